"""Tell which layout a dataset path is in, load it, and split it by the chosen policy."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

from genrescope.datasets.manifest import Manifest
from genrescope.datasets.splits import DEFAULT_FRACTIONS, check_no_leakage, find_leakage, split_manifest
from genrescope.errors import DatasetError

log = logging.getLogger(__name__)

LAYOUTS = ("folders", "gtzan", "fma", "csv")

#: Split policies. ``auto`` takes the dataset's own split (gtzan-ff for GTZAN, the official
#: one for FMA, the CSV's split column when every row fills it), else ``stratified``.
SPLIT_POLICIES = ("auto", "gtzan-ff", "stratified", "artist", "fma-official", "given", "none")


def detect_layout(path: str | os.PathLike, *, fma_subset: str | None = None) -> str:
    """The layout of a dataset path: ``csv``, ``fma``, ``gtzan`` or ``folders``.

    Raises
    ------
    DatasetError
        The path does not exist or matches no layout.
    """
    from genrescope.datasets.fma import find_fma
    from genrescope.datasets.folders import genre_folders
    from genrescope.datasets.gtzan import find_gtzan_root

    p = Path(path)
    if not p.exists():
        raise DatasetError(f"{p}: no such file or folder")
    if p.is_file():
        if p.suffix.lower() == ".csv":
            return "csv"
        raise DatasetError(f"{p}: a file, but not a CSV manifest (expected a folder or a .csv file)")
    if find_fma(p, fma_subset) is not None:
        return "fma"
    if find_gtzan_root(p) is not None:
        return "gtzan"
    if genre_folders(p):
        return "folders"
    raise DatasetError(f"{p}: cannot tell the dataset layout: expected a folder per genre, GTZAN "
                       "(genres/<genre>/<genre>.000NN.au), FMA (fma_metadata/ + fma_small/) or a CSV manifest")


def load_layout(path: str | os.PathLike, layout: str = "auto", *, fma_subset: str | None = None,
                skip_known_bad: bool = True) -> Manifest:
    """Load a dataset in ``layout`` (``auto`` detects it) without changing its splits."""
    if layout == "auto":
        layout = detect_layout(path, fma_subset=fma_subset)
        log.info("%s: detected layout %s", path, layout)
    if layout == "folders":
        from genrescope.datasets.folders import load_folders

        return load_folders(path)
    if layout == "gtzan":
        from genrescope.datasets.gtzan import load_gtzan

        return load_gtzan(path, skip_known_bad=skip_known_bad)
    if layout == "fma":
        from genrescope.datasets.fma import load_fma

        return load_fma(path, fma_subset, skip_known_bad=skip_known_bad)
    if layout == "csv":
        from genrescope.datasets.manifest import read_csv_manifest

        return read_csv_manifest(path)
    raise DatasetError(f"unknown dataset layout {layout!r}; expected auto or one of {LAYOUTS}")


def _auto_policy(m: Manifest) -> str:
    if m.layout == "gtzan":
        return "gtzan-ff"
    if m.layout == "fma":
        return "fma-official"
    given = sum(t.split is not None for t in m.entries)
    if given == len(m.entries) and given:
        return "given"
    if given:
        raise DatasetError(f"{m.root}: {given} rows have a split and {len(m.entries) - given} do not; fill the "
                           "split column on every row or on none, or choose a split policy such as stratified")
    return "stratified"


def apply_split_policy(manifest: Manifest, policy: str = "auto", *, seed: int = 0,
                       fractions: Sequence[float] = DEFAULT_FRACTIONS) -> Manifest:
    """Assign train / valid / test by ``policy`` (see :data:`SPLIT_POLICIES`).

    ``stratified`` and ``artist`` compute a seeded split stratified by label that keeps each
    artist on one side (``artist`` insists that artists are known); ``gtzan-ff`` applies the
    shipped fault-filtered GTZAN lists; ``fma-official`` and ``given`` keep the split the
    dataset came with; ``none`` clears it.
    """
    if policy not in SPLIT_POLICIES:
        raise DatasetError(f"unknown split policy {policy!r}; expected one of {', '.join(SPLIT_POLICIES)}")
    if policy == "auto":
        policy = _auto_policy(manifest)
    if policy == "none":
        return manifest.with_entries([t.replace(split=None) for t in manifest.entries], split_policy=None)
    if policy in ("stratified", "artist"):
        if manifest.layout == "gtzan":
            log.warning("%s: a track-level split of GTZAN keeps its exact replicas and artist runs "
                        "(35 reggae excerpts are Bob Marley) and overstates accuracy; prefer --split gtzan-ff",
                        manifest.root)
        out = split_manifest(manifest, fractions, seed=seed, policy=policy)
        check_no_leakage(out)
        return out
    if policy == "gtzan-ff":
        from genrescope.datasets.gtzan import apply_ff_split, ff_lists

        lists = ff_lists()
        if manifest.layout != "gtzan" and not any(t.track_id in lists for t in manifest.entries):
            raise DatasetError(f"{manifest.root}: split gtzan-ff needs GTZAN track ids (blues.00000, ...); "
                               f"this {manifest.layout} dataset has none")
        return apply_ff_split(manifest)
    if policy == "fma-official" and manifest.layout != "fma":
        raise DatasetError(f"{manifest.root}: split fma-official needs an FMA dataset, not {manifest.layout}")
    missing = sum(t.split is None for t in manifest.entries)
    if missing:
        raise DatasetError(f"{manifest.root}: split {policy} keeps the dataset's own split, but {missing} of "
                           f"{len(manifest.entries)} tracks have none")
    for problem in find_leakage(manifest)[:20]:
        log.warning("%s: the dataset's own split leaks: %s", manifest.root, problem)
    return manifest.with_entries(manifest.entries, split_policy=policy)


def load_dataset(path: str | os.PathLike, layout: str = "auto", *, split: str = "auto", seed: int = 0,
                 fractions: Sequence[float] = DEFAULT_FRACTIONS, fma_subset: str | None = None,
                 skip_known_bad: bool = True) -> Manifest:
    """Load a labelled music collection and split it.

    Parameters
    ----------
    path : path-like
        Dataset root folder (folder per genre, GTZAN, FMA) or CSV manifest.
    layout : {"auto", "folders", "gtzan", "fma", "csv"}
        The layout; ``auto`` detects it with :func:`detect_layout`.
    split : str
        Split policy, one of :data:`SPLIT_POLICIES`.
    seed : int
        Seed of the ``stratified`` / ``artist`` split.
    fractions : (float, float, float)
        Train / valid / test shares of computed splits.
    fma_subset : {"small", "medium", "large", "full"}, optional
        FMA subset to keep (default: from the audio folder's name).
    skip_known_bad : bool
        Leave out the files each dataset is known to ship broken (GTZAN ``jazz.00054``,
        the empty FMA clips), recording them in ``skipped``.

    Returns
    -------
    Manifest

    Raises
    ------
    DatasetError
        The dataset cannot be read or the split policy does not apply to it.
    """
    manifest = load_layout(path, layout, fma_subset=fma_subset, skip_known_bad=skip_known_bad)
    if not manifest.entries:
        raise DatasetError(f"{path}: the dataset holds no usable tracks")
    return apply_split_policy(manifest, split, seed=seed, fractions=fractions)


def split_problems(manifest: Manifest) -> list[str]:
    """Warnings about a split that leaves a class without training tracks (one line each)."""
    trained = {t.label for t in manifest.entries if t.split == "train"}
    missing = [label for label in manifest.labels if label not in trained]
    if not missing or not any(t.split for t in manifest.entries):
        return []
    hint = ("; this looks like a subset of GTZAN, whose official split puts these tracks elsewhere: "
            "--split stratified splits the tracks you have" if manifest.split_policy == "gtzan-ff" else
            "; --split stratified splits the tracks you have")
    counts = {label: sum(t.label == label for t in manifest.entries) for label in missing}
    listed = ", ".join(f"{label} ({n} tracks)" for label, n in counts.items())
    return [f"{manifest.root}: the {manifest.split_policy} split leaves no training tracks for {listed}{hint}"]


def describe(manifest: Manifest) -> str:
    """One line: where the data is, its layout, the split chosen and its track counts."""
    counts = {s: sum(t.split == s for t in manifest.entries) for s in ("train", "valid", "test")}
    layout = {"gtzan": "GTZAN (genre.000NN file names; --layout folders reads plain genre folders)",
              "folders": "a folder per genre", "fma": "FMA", "csv": "a CSV manifest"}.get(manifest.layout,
                                                                                         manifest.layout)
    return (f"dataset {manifest.root}: {len(manifest.entries)} tracks, {len(manifest.labels)} classes, layout "
            f"{layout}, split {manifest.split_policy} (train {counts['train']}, valid {counts['valid']}, "
            f"test {counts['test']})")


__all__ = ["LAYOUTS", "SPLIT_POLICIES", "detect_layout", "load_layout", "apply_split_policy", "load_dataset",
           "describe", "split_problems"]
