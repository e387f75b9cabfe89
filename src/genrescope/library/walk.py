"""Walking a music collection: nested folders, symlinks, loops and unreadable places.

Folders are walked in sorted order, following symlinked folders but never entering one
twice (a loop is reported, not followed); hidden names (``.*``) are skipped. Inside folders only files with an audio
extension are taken; a file named on the command line is taken whatever its name so that
a bad one is reported. The same file reached through two paths (a symlink, a hard link)
is processed once, under the first path.
"""
from __future__ import annotations

import errno
import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from genrescope.audio.decode import is_audio_path


@dataclass(frozen=True)
class Skipped:
    """A path the walk could not take, and why (one line, names the path)."""

    path: str
    error: str


def _why(path: str, e: OSError) -> str:
    if e.errno == errno.ELOOP:
        return f"{path}: symlink loop"
    if e.errno == errno.ENOENT and os.path.islink(path):
        return f"{path}: broken symlink"
    if e.errno == errno.ENOENT:
        return f"{path}: vanished while walking"
    if e.errno in (errno.EACCES, errno.EPERM):
        return f"{path}: permission denied"
    return f"{path}: cannot be read ({e.strerror or e})"


def _expand(items: list[str | os.PathLike]) -> list[str]:
    out = []
    for item in items:
        s = os.fspath(item)
        if any(ch in s for ch in "*?[") and not os.path.lexists(s):
            out.extend(sorted(glob.glob(s, recursive=True)))
        else:
            out.append(s)
    return out


def walk(paths: list[str | os.PathLike]) -> Iterator[Path | Skipped]:
    """Yield every audio file under ``paths`` (a Path), or a :class:`Skipped` entry."""
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = set()
    for top in _expand(paths):
        yield from _walk_one(top, seen_dirs, seen_files, explicit=True)


def _walk_one(path: str, seen_dirs: set, seen_files: set, *, explicit: bool) -> Iterator[Path | Skipped]:
    try:
        st = os.stat(path)
    except OSError as e:
        never = explicit and e.errno == errno.ENOENT and not os.path.islink(path)
        yield Skipped(path, f"{path}: no such file or folder" if never else _why(path, e))  # a path the user gave
        return
    if os.path.isdir(path):
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            if os.path.islink(path) and _is_loop(path):
                yield Skipped(path, f"{path}: symlink loop (points to a folder that contains it)")
            return  # another way into a folder already walked: nothing new there
        seen_dirs.add(key)
        try:
            names = sorted(os.listdir(path))
        except OSError as e:
            yield Skipped(path, _why(path, e))
            return
        for name in names:
            if name.startswith("."):  # hidden: .Trash, macOS ._ resource forks, our own temporary copies
                continue
            child = os.path.join(path, name)
            if os.path.isdir(child) or is_audio_path(name):
                yield from _walk_one(child, seen_dirs, seen_files, explicit=False)
        return
    if not explicit and not is_audio_path(path):
        return
    key = (st.st_dev, st.st_ino)
    if key in seen_files:
        return
    seen_files.add(key)
    yield Path(path)



def _is_loop(link: str) -> bool:
    """True when the symlinked folder ``link`` points at one of its own ancestors."""
    target = os.path.realpath(link)
    parent = os.path.realpath(os.path.dirname(link))
    return parent == target or parent.startswith(target.rstrip(os.sep) + os.sep)
