"""Which paths are audio: the extensions genrescope knows, and expanding folders and globs."""
from __future__ import annotations

import os
from pathlib import Path

#: File extensions genrescope looks for when it walks a folder.
AUDIO_EXTENSIONS = (".wav", ".au", ".snd", ".aif", ".aiff", ".flac", ".ogg", ".oga", ".opus", ".mp3",
                    ".m4a", ".aac", ".mp4", ".wma", ".webm")


#: What the extensions the plain install (libsndfile) decodes are; the rest need FFmpeg (the av extra).
LIBSNDFILE_EXTENSIONS = (".wav", ".au", ".snd", ".aif", ".aiff", ".flac", ".ogg", ".oga", ".opus", ".mp3")


def not_audio_reason(path: str | os.PathLike, have_ffmpeg: bool) -> str:
    """Why a file no decoder recognises was refused, in the words that fit its name.

    A name with an audio extension that a decoder here reads means the contents are the
    problem (a renamed text file, a damaged download), not the format.
    """
    ext = Path(path).suffix.lower()
    if ext in LIBSNDFILE_EXTENSIONS or (have_ffmpeg and ext in AUDIO_EXTENSIONS):
        return (f"not audio: its contents are not {ext} audio (or any format genrescope decodes), although "
                "the name says so; a renamed or damaged file?")
    if ext in AUDIO_EXTENSIONS:
        return f"{ext} files need the FFmpeg decoder: pip install 'genrescope[av]'"
    hint = "" if have_ffmpeg else " (install genrescope[av] to try the FFmpeg decoder)"
    return f"not a supported audio file ({ext or 'no extension'}){hint}"


def is_audio_path(path: str | os.PathLike) -> bool:
    """True when the file name has an audio extension genrescope knows."""
    return str(path).lower().endswith(AUDIO_EXTENSIONS)


def find_audio_files(paths: list[str | os.PathLike]) -> list[Path]:
    """Expand files, folders (recursively) and glob patterns into a sorted list of audio files.

    Paths that name a file are kept whatever their extension, so that a bad file
    given by name is reported rather than silently skipped.
    """
    import glob

    out: list[Path] = []
    for item in paths:
        s = str(item)
        p = Path(s)
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if q.is_file() and is_audio_path(q)))
        elif any(ch in s for ch in "*?[") and not p.exists():
            out.extend(sorted(Path(m) for m in glob.glob(s, recursive=True) if Path(m).is_file()))
        else:
            out.append(p)
    seen: set[Path] = set()
    uniq = []
    for p in out:
        if p not in seen:
            seen.add(p)
            uniq.append(p)
    return uniq
