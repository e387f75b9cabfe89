"""A folder per genre: ``root/<genre>/**/<audio files>``.

Any file names, any nesting below the genre folder, any format
:func:`genrescope.audio.decode.is_audio_path` knows. The track id is the path relative to
``root`` without its extension (``rock/live/song``), so it is unique and stable.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from genrescope.audio.decode import is_audio_path
from genrescope.datasets.manifest import Manifest, Skipped, Track
from genrescope.errors import DatasetError

log = logging.getLogger(__name__)


def is_hidden(name: str) -> bool:
    """Dot files and folders, including macOS ``._name`` resource forks that look like audio."""
    return name.startswith(".")


def walk_audio(folder: Path) -> list[Path]:
    """Audio files under ``folder`` (recursively, sorted), leaving out hidden files and folders."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not is_hidden(d))
        out.extend(Path(dirpath) / f for f in filenames if not is_hidden(f) and is_audio_path(f))
    return sorted(out)


def genre_folders(root: Path) -> list[Path]:
    """Sub-folders of ``root`` holding at least one audio file somewhere below them."""
    if not root.is_dir():
        return []
    subs = sorted(d for d in root.iterdir() if d.is_dir() and not is_hidden(d.name))
    return [d for d in subs if _has_audio(d)]


def _has_audio(folder: Path) -> bool:
    for _dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not is_hidden(d)]
        if any(not is_hidden(f) and is_audio_path(f) for f in filenames):
            return True
    return False


def load_folders(root: str | os.PathLike) -> Manifest:
    """Load a tree with one folder per genre.

    Parameters
    ----------
    root : path-like
        Folder whose sub-folders are named after the genres.

    Returns
    -------
    Manifest
        One track per audio file, labelled by its top-level folder, without splits and
        without artists (the tree does not say who played). Audio files directly in
        ``root``, hidden files (``._x.wav`` copies made by macOS) and a second file with
        the same name in another format are listed in ``skipped``.

    Raises
    ------
    DatasetError
        ``root`` is not a folder or has no genre folder with audio in it.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    genres = genre_folders(root)
    if not genres:
        raise DatasetError(f"{root}: no genre folders with audio files in them "
                           "(expected ROOT/<genre>/<audio files>)")
    skipped = [Skipped(str(f), None, "audio file outside any genre folder")
               for f in sorted(root.iterdir()) if f.is_file() and is_audio_path(f.name) and not is_hidden(f.name)]
    entries: list[Track] = []
    seen: dict[str, str] = {}
    for g in genres:
        for f in _walk_with_hidden(g, skipped):
            tid = f.relative_to(root).with_suffix("").as_posix()
            if tid in seen:
                skipped.append(Skipped(str(f), tid, f"same track id as {seen[tid]} (another format of one file?)"))
                continue
            seen[tid] = str(f)
            entries.append(Track(str(f), g.name, tid))
    if skipped:
        log.info("%s: %d files skipped", root, len(skipped))
    return Manifest([g.name for g in genres], entries, skipped, layout="folders", root=str(root))


def _walk_with_hidden(folder: Path, skipped: list[Skipped]) -> list[Path]:
    """:func:`walk_audio`, recording hidden audio-looking files as skipped."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not is_hidden(d)]
        skipped.extend(Skipped(str(Path(dirpath) / f), None, "hidden file (macOS '._' copy or dot file)")
                       for f in sorted(filenames) if is_hidden(f) and is_audio_path(f))
    return walk_audio(folder)


__all__ = ["load_folders", "walk_audio", "genre_folders", "is_hidden"]
