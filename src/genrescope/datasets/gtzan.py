"""GTZAN (Tzanetakis & Cook 2002) in the layouts it is found in, and its fault-filtered split.

Layouts recognised (``ROOT`` is the path given):

- the Marsyas tarball ``genres.tar.gz``: ``ROOT/genres/<g>/<g>.000NN.au``, or ``ROOT`` being
  that ``genres/`` folder itself (its ``*.mf`` lists are ignored);
- the Kaggle release: ``ROOT/Data/genres_original/<g>/<g>.000NN.wav``, or ``ROOT`` being
  ``Data/`` or ``genres_original/``;
- any copy keeping ``<g>/<g>.000NN.<ext>`` (converted to FLAC, say).

Track ids are ``<g>.000NN``. ``jazz.00054`` is unreadable in most copies and is skipped
with a warning. The fault-filtered split of Kereliuk, Sturm & Larsen (2015) ships with
genrescope (``genrescope/data/gtzan_ff``): 443 / 197 / 290 tracks, with 70 faulty tracks
(exact replicas, mislabellings, distortions) left out.
"""
from __future__ import annotations

import logging
import os
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

from genrescope.audio.decode import is_audio_path
from genrescope.datasets.folders import genre_folders, is_hidden, walk_audio
from genrescope.datasets.manifest import SPLITS, Manifest, Skipped, Track
from genrescope.errors import DatasetError

log = logging.getLogger(__name__)

#: The ten GTZAN genres (also its label order: alphabetical).
GTZAN_GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")

#: Tracks known to be unreadable in most distributed copies, with the reason.
GTZAN_KNOWN_BAD = {
    "jazz.00054": "known corrupt in most GTZAN copies (jazz.00054 fails to decode)",
}

#: Reason recorded for tracks the fault-filtered split leaves out.
FF_EXCLUDED_REASON = "excluded by the gtzan-ff split (replica, mislabelling or distortion)"
FF_UNLISTED_REASON = "not in any gtzan-ff split list"

_NAME = re.compile(r"^([a-z]+)\.(\d{5})$")


def track_id_of(path: str | os.PathLike) -> str | None:
    """``<genre>.000NN`` for a GTZAN file name (any extension), None for any other name."""
    stem = Path(str(path)).name.split(".", 2)
    if len(stem) < 2:
        return None
    tid = f"{stem[0]}.{stem[1]}"
    return tid if _NAME.match(tid) else None


def find_gtzan_root(path: str | os.PathLike) -> Path | None:
    """The folder holding the ``<genre>/`` folders of a GTZAN copy under ``path``, or None."""
    p = Path(path)
    for cand in (p / "genres", p / "Data" / "genres_original", p / "genres_original", p):
        if cand.is_dir() and _looks_like_gtzan(cand):
            return cand
    return None


def _looks_like_gtzan(folder: Path) -> bool:
    subs = genre_folders(folder)
    if not subs or any(d.name not in GTZAN_GENRES for d in subs):
        return False
    for d in subs:
        if any(not is_hidden(f.name) and track_id_of(f.name) and f.name.startswith(d.name + ".")
               for f in d.iterdir()):
            return True
    return False


def load_gtzan(path: str | os.PathLike, *, skip_known_bad: bool = True) -> Manifest:
    """Load a GTZAN copy (see the module docstring for the layouts), without splits.

    Parameters
    ----------
    path : path-like
        The dataset root, ``genres/``, ``Data/`` or ``genres_original/``.
    skip_known_bad : bool
        Leave out :data:`GTZAN_KNOWN_BAD` (``jazz.00054``) with a logged warning.

    Returns
    -------
    Manifest
        Labels are the genres present, in alphabetical order; artists are unknown.
        Files whose name is not ``<genre>.000NN`` of their own folder are skipped.
    """
    root = find_gtzan_root(path)
    if root is None:
        raise DatasetError(f"{path}: not a GTZAN tree (expected genres/<genre>/<genre>.000NN.au or "
                           "Data/genres_original/<genre>/<genre>.000NN.wav)")
    entries: list[Track] = []
    skipped: list[Skipped] = []
    seen: dict[str, str] = {}
    genres = genre_folders(root)
    for g in genres:
        skipped.extend(Skipped(str(f), None, "hidden file (macOS '._' copy or dot file)")
                       for f in sorted(g.iterdir()) if is_hidden(f.name) and is_audio_path(f.name))
        for f in walk_audio(g):
            tid = track_id_of(f.name)
            if tid is None or not tid.startswith(g.name + "."):
                skipped.append(Skipped(str(f), tid, f"name is not {g.name}.000NN.<ext>"))
            elif tid in seen:
                skipped.append(Skipped(str(f), tid, f"same track id as {seen[tid]}"))
            elif skip_known_bad and tid in GTZAN_KNOWN_BAD:
                log.warning("%s: skipped, %s", f, GTZAN_KNOWN_BAD[tid])
                skipped.append(Skipped(str(f), tid, GTZAN_KNOWN_BAD[tid]))
            else:
                seen[tid] = str(f)
                entries.append(Track(str(f), g.name, tid))
    labels = [g.name for g in genres if any(t.label == g.name for t in entries)]
    return Manifest(labels, entries, skipped, layout="gtzan", root=str(root))


@lru_cache(maxsize=None)
def ff_lists() -> dict[str, str]:
    """The fault-filtered split: ``{track_id: "train" | "valid" | "test" | "excluded"}``.

    Read from the lists shipped in ``genrescope/data/gtzan_ff``.
    """
    base = resources.files("genrescope").joinpath("data", "gtzan_ff")
    out: dict[str, str] = {}
    for part in (*SPLITS, "excluded"):
        name = f"gtzan_ff_{part}.txt"
        try:
            text = base.joinpath(name).read_text(encoding="utf-8")
        except (FileNotFoundError, OSError) as e:
            raise DatasetError(f"genrescope/data/gtzan_ff/{name}: split list missing from the install ({e})") from e
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            tid = track_id_of(line)
            if tid is None:
                raise DatasetError(f"genrescope/data/gtzan_ff/{name}, line {n}: not a GTZAN track name: {line!r}")
            if tid in out:
                raise DatasetError(f"genrescope/data/gtzan_ff/{name}, line {n}: {tid} is also in {out[tid]}")
            out[tid] = part
    return out


def apply_ff_split(manifest: Manifest) -> Manifest:
    """Assign the fault-filtered split; drop excluded tracks and tracks in no list.

    Dropped tracks go to ``skipped`` with their reason; the number of unlisted tracks
    is logged as a warning, since a complete GTZAN copy has none.
    """
    lists = ff_lists()
    kept: list[Track] = []
    skipped = list(manifest.skipped)
    unlisted = 0
    for t in manifest.entries:
        part = lists.get(t.track_id)
        if part in SPLITS:
            kept.append(t.replace(split=part))
        elif part == "excluded":
            skipped.append(Skipped(t.path, t.track_id, FF_EXCLUDED_REASON))
        else:
            unlisted += 1
            skipped.append(Skipped(t.path, t.track_id, FF_UNLISTED_REASON))
    if unlisted:
        log.warning("%s: %d tracks are in no gtzan-ff list and were dropped", manifest.root, unlisted)
    n_excl = sum(s.reason == FF_EXCLUDED_REASON for s in skipped)
    log.info("%s: gtzan-ff split keeps %d tracks, excludes %d faulty ones", manifest.root, len(kept), n_excl)
    return manifest.with_entries(kept, skipped=skipped, split_policy="gtzan-ff")


__all__ = ["GTZAN_GENRES", "GTZAN_KNOWN_BAD", "load_gtzan", "find_gtzan_root", "track_id_of", "ff_lists",
           "apply_ff_split"]
