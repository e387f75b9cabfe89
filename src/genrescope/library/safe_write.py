"""Crash-safe rewrites: a file is either untouched or fully updated, never truncated.

The edit is made on a copy in the same folder; the copy is flushed to disk, given the
original's permission bits, owner (where allowed) and times, and renamed over the original
in one ``os.replace``. A crash at any moment leaves the original, or the finished copy in
its place, plus at worst a stray ``.NAME.genrescope-tmp`` file that the next run removes.
"""
from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Callable

from genrescope.errors import GenrescopeError

TMP_SUFFIX = ".genrescope-tmp"


class WriteError(GenrescopeError):
    """A file that may not or cannot be rewritten."""


def temp_path(path: Path) -> Path:
    """Where the copy of ``path`` is written (same folder, hidden, never an audio extension)."""
    return path.with_name(f".{path.name}{TMP_SUFFIX}")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some systems cannot open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def check_writable(path: Path) -> None:
    """Refuse read-only files and folders where no copy can be made, naming the file."""
    # the mode bits too: root may write anything, but a file nobody may write is the user's "hands off"
    if not os.access(path, os.W_OK) or not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise WriteError(f"{path}: read-only file, tags not written")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise WriteError(f"{path}: its folder is not writable, tags not written")


def rewrite(path: str | os.PathLike, edit: Callable[[Path], None]) -> os.stat_result:
    """Apply ``edit(copy)`` to a copy of ``path`` and atomically put the copy in its place.

    Parameters
    ----------
    path : path-like
        The file; a symlink is followed, so the link stays a link.
    edit : callable
        Modifies the file it is given in place (e.g. saves new tags into it).

    Returns
    -------
    os.stat_result
        The file's status after the rename (its new size; the old modification time).

    Raises
    ------
    WriteError
        Read-only file, unwritable folder, or an OS error while copying or renaming.
    """
    real = Path(os.path.realpath(path))
    tmp = temp_path(real)
    try:
        check_writable(real)
        st = real.stat()
        tmp.unlink(missing_ok=True)  # a stray copy from a killed run
        shutil.copyfile(real, tmp)
        edit(tmp)
        os.chmod(tmp, stat.S_IMODE(st.st_mode))
        try:
            os.chown(tmp, st.st_uid, st.st_gid)
        except (PermissionError, AttributeError):  # only root may give files away
            pass
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(tmp, real)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise WriteError(f"{path}: cannot rewrite the file ({e.strerror or e})") from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(real.parent)
    return real.stat()
