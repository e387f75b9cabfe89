"""Where the training labels come from: the files' own genre tags, their folders, or a CSV.

Genre tags are read with mutagen from every container that has them:

=============  =====================================================================
container      genre field
=============  =====================================================================
mp3, wav, aiff ID3 ``TCON`` (every value of a v2.4 multi-value frame), including the
               ID3v1 numeric forms ``(17)``, ``17`` and ``(17)Rock``
flac/ogg/opus  Vorbis comment ``GENRE`` (every value)
m4a/mp4        ``©gen`` (text) and ``gnre`` (ID3v1 number + 1)
=============  =====================================================================

One value may also hold several genres: ``"Rock; Pop"``, ``"Rock/Pop"``, ``"Rock | Pop"``
and ``"Rock, Pop"`` are two genres each. ``&`` never splits (``R&B``, ``Drum & Bass``).
A track's *label* is its first genre that the taxonomy keeps (see
:mod:`genrescope.learn.user_taxonomy`); its *group* (who the track belongs to, for the folds)
is its artist tag, else its album, else its folder.
"""
from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from genrescope.errors import GenrescopeError

#: The label sources ``--labels`` takes besides a CSV file.
SOURCES = ("tags", "folders")
_SPLIT = re.compile(r"\s*[;/|\\,\x00]\s*")
_NUMERIC = re.compile(r"^\((\d{1,3})\)(.*)$|^(\d{1,3})$")


@dataclass
class Track:
    """One audio file of the library and what its tags say.

    Attributes
    ----------
    path : str
        The file.
    genres : list of str
        Its genres as written (split, numeric ID3v1 genres named), in tag order; empty
        when untagged.
    artist, album : str or None
        From the tags, for grouping the folds.
    """

    path: str
    genres: list[str] = field(default_factory=list)
    artist: str | None = None
    album: str | None = None

    @property
    def group(self) -> str:
        """Who the track belongs to: ``artist:...``, else ``album:...``, else ``folder:...``."""
        if self.artist:
            return f"artist:{self.artist.strip().casefold()}"
        if self.album:
            return f"album:{self.album.strip().casefold()}"
        return f"folder:{Path(self.path).parent}"


def _id3v1_name(number: int) -> str | None:
    from mutagen._constants import GENRES

    return GENRES[number] if 0 <= number < len(GENRES) else None


def split_genres(values: list[str]) -> list[str]:
    """Tag values -> genres: split on ``; / | \\ ,``, ID3v1 numbers named, blanks dropped.

    >>> split_genres(["Rock; Pop", "(17)", "R&B/Drum & Bass"])
    ['Rock', 'Pop', 'Rock', 'R&B', 'Drum & Bass']
    """
    out: list[str] = []
    for value in values:
        for part in _SPLIT.split(str(value).strip()):
            part = part.strip()
            if part.upper() in ("(RX)", "(CR)"):  # ID3v1 remix / cover markers: no genre
                continue
            m = _NUMERIC.match(part)
            if m:
                number = int(m.group(1) or m.group(3))
                rest = (m.group(2) or "").strip()
                part = rest or _id3v1_name(number) or ""
            if part:
                out.append(part)
    return out


def _first(values) -> str | None:
    for v in values or []:
        if str(v).strip():
            return str(v).strip()
    return None


def _fields(tags) -> tuple[list[str], str | None, str | None]:
    """(genre values, artist, album) of a mutagen tag object of any container."""
    if hasattr(tags, "getall"):  # ID3 (mp3, wav, aiff)
        def text(key):
            return [str(t) for fr in tags.getall(key) for t in fr.text]
        return text("TCON"), _first(text("TPE1") or text("TPE2")), _first(text("TALB"))
    keys = {str(k) for k in tags.keys()}
    if "©gen" in keys or "gnre" in keys or "©ART" in keys:  # MP4
        genres = [str(v) for v in tags.get("©gen", [])]
        genres += [n for v in tags.get("gnre", []) if (n := _id3v1_name(int(v) - 1))]
        return genres, _first(tags.get("©ART") or tags.get("aART")), _first(tags.get("©alb"))
    # Vorbis comments (flac, ogg, opus): keys are case-insensitive
    return ([str(v) for v in tags.get("genre", [])], _first(tags.get("artist") or tags.get("albumartist")),
            _first(tags.get("album")))


def read_track(path: str | os.PathLike) -> Track:
    """The genres, artist and album a file's tags hold (a file without tags: none).

    Raises
    ------
    GenrescopeError
        mutagen cannot parse the file's tags.
    """
    from genrescope.library.tags import open_file

    f, _ = open_file(path)  # TagError (a GenrescopeError) names the file when mutagen cannot parse it
    if f is None or f.tags is None:
        return Track(str(path))
    genres, artist, album = _fields(f.tags)
    return Track(str(path), split_genres(genres), artist, album)


def read_tracks(files: list[str], source: str = "tags", roots: list[str] | None = None
                ) -> tuple[list[Track], list[str]]:
    """Every file as a :class:`Track` with its genres from ``source``; (tracks, problems).

    Parameters
    ----------
    files : list of str
        The audio files (already walked).
    source : str
        ``"tags"`` (the files' genre tags), ``"folders"`` (the name of the folder holding each
        file; files directly in a root named on the command line are untagged) or the path of a
        CSV file of ``path,genre`` rows (paths absolute or relative to the CSV's folder).
    roots : list of str, optional
        The folders named on the command line (for ``"folders"``).
    """
    tracks, problems = [], []
    for p in files:
        try:
            tracks.append(read_track(p))
        except GenrescopeError as e:  # unreadable tags: still a file to tag later
            problems.append(str(e))
            tracks.append(Track(p))
    if source == "folders":
        top = {str(Path(r).resolve()) for r in roots or []}
        for t in tracks:
            parent = Path(t.path).resolve().parent
            t.genres = [] if str(parent) in top else [parent.name]
    elif source != "tags":
        table = read_label_csv(source)
        for t in tracks:
            g = table.get(str(Path(t.path).resolve()))
            t.genres = split_genres([g]) if g else []
    return tracks, problems


def read_label_csv(path: str | os.PathLike) -> dict[str, str]:
    """``{absolute path: genre}`` from a CSV of ``path,genre`` rows (a header row is allowed).

    Raises
    ------
    GenrescopeError
        The file is missing, unreadable or has a row without two columns.
    """
    p = Path(path)
    if not p.is_file():
        raise GenrescopeError(f"{p}: --labels takes 'tags', 'folders' or a CSV file of path,genre rows; "
                              f"no such file")
    out: dict[str, str] = {}
    try:
        with open(p, newline="", encoding="utf-8-sig") as fh:
            for i, row in enumerate(csv.reader(fh), 1):
                if not row or not "".join(row).strip():
                    continue
                if len(row) < 2:
                    raise GenrescopeError(f"{p}: line {i}: expected path,genre, got {','.join(row)!r}")
                if i == 1 and row[0].strip().lower() in ("path", "file", "filename"):
                    continue
                f = Path(row[0].strip())
                f = f if f.is_absolute() else p.parent / f
                out[str(f.resolve())] = row[1].strip()
    except (OSError, UnicodeDecodeError) as e:
        raise GenrescopeError(f"{p}: cannot read the label CSV ({e})") from e
    return out
