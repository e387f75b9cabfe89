"""FMA, the Free Music Archive dataset (Defferrard et al., ISMIR 2017).

Layout::

    ROOT/fma_metadata/tracks.csv
    ROOT/fma_small/000/000002.mp3      # folder = track_id // 1000, file = 6-digit track_id
    ROOT/fma_medium/...                # and/or fma_large, fma_full

``ROOT`` may also be the audio folder itself (``fma_small/``) with ``fma_metadata/`` beside
it. ``tracks.csv`` has three header rows: top-level names (album, artist, set, track),
sub-column names (genre_top, split, subset, id, name, ...) and ``track_id`` followed by
empty cells. It is read with the csv module, keeping only the columns needed.

Subsets nest: small (8,000 tracks, 8 genres) is in medium (25,000, 16 genres), which is
in large (106,574 clips); full holds the same tracks untrimmed. The official split
(``set/split``: training / validation / test) is stratified and keeps artists on one side.
"""
from __future__ import annotations

import csv
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from genrescope.audio.decode import is_audio_path
from genrescope.datasets.manifest import Manifest, Skipped, Track, normalize_split
from genrescope.errors import DatasetError

log = logging.getLogger(__name__)

FMA_SUBSETS = ("small", "medium", "large", "full")
_RANK = {"small": 0, "medium": 1, "large": 2}

_NO_AUDIO = "clip holds no audio (cut past the end of the song: bad length metadata, FMA issues #4, #44)"


def _short(seconds: float) -> str:
    return f"clip is only {seconds:g} s long instead of 30 s (bad length metadata, FMA wiki)"


#: Clips of fma_small that are empty or far shorter than 30 s (FMA issue #8 and wiki).
FMA_KNOWN_BAD_SMALL: dict[str, str] = {
    "098565": _short(1.6), "098567": _short(0.5), "098569": _short(1.5),
    "099134": _NO_AUDIO, "108925": _NO_AUDIO, "133297": _NO_AUDIO,
}

#: Clips of fma_medium that are empty or short, as listed on the FMA wiki ("excerpts shorter
#: than 30s and erroneous audio length metadata"); includes the fma_small ones. The same
#: trimmed clips are in fma_large; fma_full holds the untrimmed songs.
FMA_KNOWN_BAD_MEDIUM: dict[str, str] = {
    **FMA_KNOWN_BAD_SMALL,
    **{tid: _NO_AUDIO for tid in ("001486", "005574", "065753", "080391", "098558", "098559", "098560",
                                  "098571", "105247", "126981", "127336", "143992")},
    "098566": _short(6.2), "098568": _short(6.6), "108924": _short(27.4),
}


def known_bad(subset: str | None) -> dict[str, str]:
    """The known-bad clips in the audio folder of ``subset`` (none in ``full``; None: unknown folder)."""
    if subset == "small":
        return FMA_KNOWN_BAD_SMALL
    if subset in ("medium", "large", None):
        return FMA_KNOWN_BAD_MEDIUM
    return {}


@dataclass(frozen=True)
class FmaRow:
    """The columns of one ``tracks.csv`` row that genrescope uses."""

    track_id: int
    genre_top: str
    split: str | None
    subset: str
    artist_id: str | None
    artist_name: str | None
    line: int


def audio_path(audio_dir: str | os.PathLike, track_id: int, ext: str = ".mp3") -> Path:
    """``audio_dir/123/123456.mp3`` for track 123456."""
    return Path(audio_dir) / f"{track_id // 1000:03d}" / f"{track_id:06d}{ext}"


def find_fma(path: str | os.PathLike, subset: str | None = None) -> tuple[Path, Path, str | None] | None:
    """Locate ``(tracks.csv, audio folder, subset)`` from a root or audio folder, or None.

    The subset defaults to the audio folder's name (``fma_medium`` -> ``medium``); with a
    root holding several audio folders and no ``subset``, the smallest is taken.
    """
    if subset is not None and subset not in FMA_SUBSETS:
        raise DatasetError(f"FMA subset must be one of {FMA_SUBSETS}, got {subset!r}")
    p = Path(path)
    if not p.is_dir():
        return None
    meta = next((c for c in (p / "fma_metadata" / "tracks.csv", p / "tracks.csv",
                             p.parent / "fma_metadata" / "tracks.csv") if c.is_file()), None)
    if meta is None:
        return None
    m = re.fullmatch(r"fma_(small|medium|large|full)", p.name)
    if m:
        return meta, p, subset or m.group(1)
    present = [s for s in FMA_SUBSETS if (p / f"fma_{s}").is_dir()]
    if subset is not None:
        # the tracks of a subset are also in every larger subset's audio folder
        holder = next((s for s in FMA_SUBSETS[FMA_SUBSETS.index(subset):] if s in present), None)
        if holder is not None:
            return meta, p / f"fma_{holder}", subset
    if subset is None and present:
        if len(present) > 1:
            log.warning("%s: several FMA audio folders (%s); using fma_%s (choose with --fma-subset)",
                        p, ", ".join(present), present[0])
        return meta, p / f"fma_{present[0]}", present[0]
    if any(re.fullmatch(r"\d{3}", d.name) for d in p.iterdir() if d.is_dir()):
        return meta, p, subset  # an audio folder under another name
    if subset is not None:
        raise DatasetError(f"{p}: no audio folder holding the {subset} subset "
                           f"(found: {', '.join('fma_' + s for s in present) or 'none'})")
    return None


def read_tracks_csv(path: str | os.PathLike) -> list[FmaRow]:
    """Parse FMA's ``tracks.csv`` (three header rows) into :class:`FmaRow` records.

    Raises
    ------
    DatasetError
        Not FMA's header, a needed column missing, or a malformed row (file and line named).
    """
    p = Path(path)
    old_limit = csv.field_size_limit()
    csv.field_size_limit(max(old_limit, 2**31 - 1))  # artist bios can exceed the 128 KiB default
    try:
        with open(p, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            col = _header_columns(p, reader)
            return [_parse_row(p, reader.line_num, row, col) for row in reader if row]
    except UnicodeDecodeError as e:
        raise DatasetError(f"{p}: not UTF-8 text ({e})") from e
    finally:
        csv.field_size_limit(old_limit)


def _header_columns(p: Path, reader) -> dict[str, int]:
    rows = [next(reader, None) for _ in range(3)]
    if any(r is None for r in rows) or not rows[2] or rows[2][0].strip() != "track_id":
        raise DatasetError(f"{p}: not FMA's tracks.csv (expected three header rows, the third starting "
                           f"with 'track_id', near line {reader.line_num})")
    top, sub = rows[0], rows[1]
    index: dict[tuple[str, str], int] = {}
    current = ""
    for i in range(1, len(sub)):
        current = (top[i].strip() if i < len(top) and top[i].strip() else current)
        index.setdefault((current, sub[i].strip()), i)
    need = {"genre_top": ("track", "genre_top"), "split": ("set", "split"), "subset": ("set", "subset")}
    missing = [f"{a}/{b}" for a, b in need.values() if (a, b) not in index]
    if missing:
        raise DatasetError(f"{p}, lines 1-2: header lacks column(s) {', '.join(missing)}")
    col = {k: index[v] for k, v in need.items()}
    for k, v in (("artist_id", ("artist", "id")), ("artist_name", ("artist", "name"))):
        if v in index:
            col[k] = index[v]
    return col


def _parse_row(p: Path, line: int, row: list[str], col: dict[str, int]) -> FmaRow:
    def cell(name: str) -> str:
        i = col.get(name)
        return row[i].strip() if i is not None and i < len(row) else ""

    if len(row) <= max(col.values()):
        raise DatasetError(f"{p}, line {line}: {len(row)} fields, expected at least {max(col.values()) + 1}")
    try:
        tid = int(row[0])
    except ValueError:
        raise DatasetError(f"{p}, line {line}: track_id {row[0]!r} is not a number") from None
    split = normalize_split(cell("split"), f"{p}, line {line}: ")
    return FmaRow(tid, cell("genre_top"), split, cell("subset").lower(), cell("artist_id") or None,
                  cell("artist_name") or None, line)


def _audio_ext(audio_dir: Path) -> str:
    """Extension of the audio files (``.mp3`` in the official archives, other in conversions)."""
    for d in sorted(audio_dir.iterdir()):
        if d.is_dir() and re.fullmatch(r"\d{3}", d.name):
            for f in sorted(d.iterdir()):
                if f.is_file() and is_audio_path(f.name) and not f.name.startswith("."):
                    return f.suffix
    return ".mp3"


def load_fma(path: str | os.PathLike, subset: str | None = None, *, skip_known_bad: bool = True) -> Manifest:
    """Load an FMA copy with its official split.

    Parameters
    ----------
    path : path-like
        The folder holding ``fma_metadata/`` and ``fma_<subset>/``, or the audio folder.
    subset : {"small", "medium", "large", "full"}, optional
        Which tracks to keep, by ``set/subset`` (nested: medium includes small). Default:
        from the audio folder's name; if that says nothing, every row whose audio exists.
    skip_known_bad : bool
        Skip the empty and short clips listed in :data:`FMA_KNOWN_BAD_MEDIUM`.

    Returns
    -------
    Manifest
        Track ids are 6-digit (``000002``), labels are ``track/genre_top``, artists are
        ``artist/id`` (name in ``meta["artist_name"]``), splits the official ones. Rows
        without ``genre_top``, known-bad clips and subset rows without an audio file are
        in ``skipped`` with their reason.
    """
    found = find_fma(path, subset)
    if found is None:
        raise DatasetError(f"{path}: not an FMA tree (expected fma_metadata/tracks.csv and "
                           "fma_<subset>/NNN/NNNNNN.mp3)")
    tracks_csv, audio_dir, subset = found
    rows = read_tracks_csv(tracks_csv)
    ext = _audio_ext(audio_dir)
    folder_kind = re.fullmatch(r"fma_(small|medium|large|full)", audio_dir.name)
    bad = known_bad(folder_kind.group(1) if folder_kind else subset) if skip_known_bad else {}
    max_rank = _RANK.get(subset or "", 2)
    entries: list[Track] = []
    skipped: list[Skipped] = []
    absent = 0
    for r in rows:
        if subset not in (None, "full") and _RANK.get(r.subset, 2) > max_rank:
            continue
        f = audio_path(audio_dir, r.track_id, ext)
        tid = f"{r.track_id:06d}"
        exists = f.is_file()
        if subset is None and not exists:
            absent += 1
        elif not r.genre_top:
            skipped.append(Skipped(str(f), tid, "no track/genre_top in tracks.csv (several root genres)"))
        elif tid in bad:
            skipped.append(Skipped(str(f), tid, bad[tid]))
        elif not exists:
            skipped.append(Skipped(str(f), tid, f"audio file not found (in subset {subset})"))
        else:
            meta = {k: v for k, v in (("artist_name", r.artist_name), ("subset", r.subset)) if v}
            entries.append(Track(str(f), r.genre_top, tid, r.artist_id, r.split, meta))
    n_bad = sum(s.track_id in bad for s in skipped)
    if n_bad:
        log.warning("%s: skipped %d known empty or short FMA clips", audio_dir, n_bad)
    if absent:
        log.info("%s: %d tracks.csv rows have no audio in this folder", audio_dir, absent)
    if not entries:
        raise DatasetError(f"{audio_dir}: no FMA track with a genre and an audio file "
                           f"(subset {subset or 'any'}, {len(rows)} rows in {tracks_csv})")
    labels = sorted({t.label for t in entries})
    return Manifest(labels, entries, skipped, layout="fma", root=str(audio_dir), split_policy="fma-official")


__all__ = ["FMA_SUBSETS", "FMA_KNOWN_BAD_SMALL", "FMA_KNOWN_BAD_MEDIUM", "known_bad", "FmaRow", "audio_path",
           "find_fma", "read_tracks_csv", "load_fma"]
