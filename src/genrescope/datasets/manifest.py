"""The manifest: one entry per track, whatever layout the collection came in.

Every loader (folder per genre, GTZAN, FMA, a hand-written CSV) returns a
:class:`Manifest`. Splits are decided per track (and per artist where it is known);
windows are cut from tracks later, so one song can never sit on both sides of a split.

A manifest round-trips through CSV with :meth:`Manifest.to_csv` and
:func:`read_csv_manifest`; the same reader loads a CSV a user writes by hand.
"""
from __future__ import annotations

import csv
import dataclasses
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

from genrescope.errors import DatasetError

log = logging.getLogger(__name__)

#: The split names, in the order tables show them.
SPLITS = ("train", "valid", "test")

#: Spellings accepted in CSV files and metadata, mapped to the names in :data:`SPLITS`.
SPLIT_ALIASES = {"train": "train", "training": "train", "valid": "valid", "validation": "valid",
                 "val": "valid", "dev": "valid", "test": "test", "testing": "test"}

CSV_COLUMNS = ("path", "label", "track_id", "artist", "split")
_META_PREFIX = "meta."


@dataclass(frozen=True)
class Track:
    """One labelled recording.

    Parameters
    ----------
    path : str
        Audio file, absolute or relative to the working directory.
    label : str
        Genre label.
    track_id : str
        Unique name of the track in its dataset (``blues.00012``, ``000002``, ``rock/a/b``).
    artist : str or None
        Artist identifier where the dataset says who played; tracks of one artist are
        never split apart.
    split : str or None
        ``"train"``, ``"valid"``, ``"test"``, or None before splitting.
    meta : dict
        Extra facts from the source (FMA artist name and subset, ...); not compared.
    """

    path: str
    label: str
    track_id: str
    artist: str | None = None
    split: str | None = None
    meta: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    def replace(self, **changes) -> "Track":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Skipped:
    """A file (or listed track) left out of the manifest, and why."""

    path: str
    track_id: str | None
    reason: str


@dataclass
class Manifest:
    """The label list, the tracks, and what was left out.

    Parameters
    ----------
    labels : list of str
        Class names; a track's class index is ``labels.index(track.label)``.
    entries : list of Track
        The tracks, in a stable order.
    skipped : list of Skipped
        Files found (or tracks listed) but not used, each with its reason.
    layout : str
        Which loader built it (``folders``, ``gtzan``, ``fma``, ``csv``).
    root : str
        The folder or file it was loaded from.
    split_policy : str or None
        How ``split`` was assigned (``gtzan-ff``, ``stratified``, ``fma-official``, ...).
    """

    labels: list[str]
    entries: list[Track]
    skipped: list[Skipped] = field(default_factory=list)
    layout: str = ""
    root: str = ""
    split_policy: str | None = None

    def __post_init__(self) -> None:
        known = set(self.labels)
        if len(known) != len(self.labels):
            raise DatasetError(f"manifest: duplicate labels in {self.labels}")
        unknown = sorted({t.label for t in self.entries} - known)
        if unknown:
            raise DatasetError(f"manifest: tracks carry labels not in the label list: {unknown}")
        for t in self.entries:
            if t.split is not None and t.split not in SPLITS:
                raise DatasetError(f"manifest: track {t.track_id!r} has unknown split {t.split!r}")

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[Track]:
        return iter(self.entries)

    def label_index(self, label: str) -> int:
        """Class index of ``label``."""
        try:
            return self.labels.index(label)
        except ValueError:
            raise DatasetError(f"manifest: unknown label {label!r}; labels are {self.labels}") from None

    def splits(self) -> list[str | None]:
        """The splits present, in :data:`SPLITS` order, with None last if some track has none."""
        present = {t.split for t in self.entries}
        return [s for s in SPLITS if s in present] + ([None] if None in present else [])

    def counts(self) -> dict[str, dict[str, int]]:
        """Tracks per class and split.

        Returns
        -------
        dict
            ``{label: {"train": n, "valid": n, "test": n, "none": n, "total": n}}`` for every
            label (zeros included); ``"none"`` counts tracks without a split.
        """
        c = Counter((t.label, t.split or "none") for t in self.entries)
        out = {}
        for label in self.labels:
            row = {s: c[(label, s)] for s in (*SPLITS, "none")}
            row["total"] = sum(row.values())
            out[label] = row
        return out

    def filter(self, split: str | None) -> "Manifest":
        """The tracks of one split (None: those without one), with the same label list."""
        if split is not None and split not in SPLITS:
            raise DatasetError(f"manifest: unknown split {split!r}; expected one of {SPLITS}")
        return dataclasses.replace(self, entries=[t for t in self.entries if t.split == split])

    def with_entries(self, entries: list[Track], **changes) -> "Manifest":
        """A copy holding ``entries`` (and any other field changes)."""
        return dataclasses.replace(self, entries=list(entries), **changes)

    def to_csv(self, path: str | os.PathLike) -> None:
        """Write the manifest as CSV (``path,label,track_id,artist,split`` and ``meta.*`` columns).

        Paths inside the CSV's folder are written relative to it, so the folder can move.
        """
        out = Path(path)
        base = Path(os.path.abspath(out)).parent
        meta_keys = sorted({k for t in self.entries for k in t.meta})
        with open(out, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow([*CSV_COLUMNS, *(_META_PREFIX + k for k in meta_keys)])
            for t in self.entries:
                w.writerow([_relative_to(t.path, base), t.label, t.track_id, t.artist or "", t.split or "",
                            *(t.meta.get(k, "") for k in meta_keys)])

    @classmethod
    def from_csv(cls, path: str | os.PathLike) -> "Manifest":
        """Read a CSV written by :meth:`to_csv` or by hand (see :func:`read_csv_manifest`)."""
        return read_csv_manifest(path)


def _relative_to(p: str, base: Path) -> str:
    ap = Path(os.path.abspath(p))
    try:
        return ap.relative_to(base).as_posix()
    except ValueError:
        return str(ap)


def normalize_split(value: str | None, where: str = "") -> str | None:
    """Map a split spelling (``training``, ``validation``, ``val``, blank, ...) to :data:`SPLITS`."""
    if value is None or not value.strip():
        return None
    s = SPLIT_ALIASES.get(value.strip().lower())
    if s is None:
        raise DatasetError(f"{where}unknown split {value!r}; use train, valid or test (or leave it empty)")
    return s


def _default_track_id(path: Path, base: Path) -> str:
    """Path relative to ``base`` without its extension; the absolute path for files outside ``base``."""
    try:
        return path.relative_to(base).with_suffix("").as_posix()
    except ValueError:
        return path.with_suffix("").as_posix()


def read_csv_manifest(path: str | os.PathLike) -> Manifest:
    """Load a CSV manifest: columns ``path,label`` required, ``track_id,artist,split`` optional.

    Relative paths are resolved against the CSV's folder. ``track_id`` defaults to the path
    relative to that folder without its extension (the absolute path, for files outside
    it). Columns named ``meta.<key>`` are kept in
    :attr:`Track.meta`; other columns are ignored.

    Raises
    ------
    DatasetError
        Missing file or column, or a bad row (the message names the file and line).
    """
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"{p}: CSV manifest not found")
    base = Path(os.path.abspath(p)).parent
    entries: list[Track] = []
    first_line: dict[str, int] = {}
    with open(p, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        while header is not None and not any(h.strip() for h in header):
            header = next(reader, None)
        if header is None:
            raise DatasetError(f"{p}: CSV manifest is empty; expected a header with path,label")
        cols = [h.strip().lower() for h in header]
        missing = [c for c in ("path", "label") if c not in cols]
        if missing:
            raise DatasetError(f"{p}, line {reader.line_num}: header lacks column(s) {', '.join(missing)} "
                               f"(found: {', '.join(cols)})")
        dup = sorted({c for c in cols if c and cols.count(c) > 1})
        if dup:
            raise DatasetError(f"{p}, line {reader.line_num}: duplicate column(s) {', '.join(dup)}")
        idx = {c: i for i, c in enumerate(cols)}
        meta_cols = [(c[len(_META_PREFIX):], i) for c, i in idx.items() if c.startswith(_META_PREFIX)]
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            where = f"{p}, line {line}: "
            if len(row) > len(cols) and any(cell.strip() for cell in row[len(cols):]):
                raise DatasetError(f"{where}{len(row)} fields but the header has {len(cols)} "
                                   "(a comma inside a value needs double quotes)")

            def get(name: str, row: list[str] = row) -> str:
                i = idx.get(name)
                return row[i].strip() if i is not None and i < len(row) else ""

            raw_path, label = get("path"), get("label")
            if not raw_path:
                raise DatasetError(f"{where}empty path")
            if not label:
                raise DatasetError(f"{where}empty label for {raw_path!r}")
            audio = Path(raw_path).expanduser()
            audio = Path(os.path.normpath(audio if audio.is_absolute() else base / audio))
            track_id = get("track_id") or _default_track_id(audio, base)
            if track_id in first_line:
                raise DatasetError(f"{where}track_id {track_id!r} already used on line {first_line[track_id]}")
            first_line[track_id] = line
            split = normalize_split(get("split"), where)
            meta = {k: row[i].strip() for k, i in meta_cols if i < len(row) and row[i].strip()}
            entries.append(Track(str(audio), label, track_id, get("artist") or None, split, meta))
    if not entries:
        raise DatasetError(f"{p}: CSV manifest has a header but no rows")
    missing_files = sum(not Path(t.path).exists() for t in entries)
    if missing_files:
        log.warning("%s: %d of %d listed audio files do not exist", p, missing_files, len(entries))
    labels = sorted({t.label for t in entries})
    given = any(t.split for t in entries)
    return Manifest(labels, entries, layout="csv", root=str(p), split_policy="given" if given else None)


__all__ = ["SPLITS", "Track", "Skipped", "Manifest", "read_csv_manifest", "normalize_split"]
