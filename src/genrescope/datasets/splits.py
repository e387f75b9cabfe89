"""Track- and artist-level splits, and the leakage check every split must pass.

Splitting happens on tracks, never on windows: windows are cut from each track after
the split, so clips of one song cannot end up on both sides. Where the dataset says
who the artist is, all of an artist's tracks go to the same side too; random
track-level splits of collections with artist runs (35 of GTZAN's 100 reggae excerpts
are Bob Marley) overstate accuracy by 10-20 points.
"""
from __future__ import annotations

import logging
import os
import random
import re
from collections import Counter, defaultdict
from typing import Sequence

from genrescope.datasets.manifest import SPLITS, Manifest, Track
from genrescope.errors import DatasetError

log = logging.getLogger(__name__)

#: Train / valid / test fractions used when none are given.
DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)


def artist_key(artist: str | None) -> str | None:
    """Artist name as compared across tracks: trimmed, case-folded, inner spaces collapsed."""
    if artist is None:
        return None
    key = re.sub(r"\s+", " ", artist).strip().casefold()
    return key or None


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    if len(fractions) != 3:
        raise DatasetError(f"split fractions: need three numbers (train, valid, test), got {fractions!r}")
    fr = tuple(float(x) for x in fractions)
    if any(x < 0 for x in fr) or fr[0] <= 0 or abs(sum(fr) - 1.0) > 1e-6:
        raise DatasetError(f"split fractions: need train > 0, valid, test >= 0 summing to 1, got {fractions!r}")
    return fr  # type: ignore[return-value]


def _groups(tracks: Sequence[Track]) -> list[list[int]]:
    """Indices of tracks that must stay together: same artist, same track id or same file."""
    parent = list(range(len(tracks)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[tuple[str, str], int] = {}
    for i, t in enumerate(tracks):
        keys = [("id", t.track_id), ("path", os.path.abspath(t.path))]
        a = artist_key(t.artist)
        if a is not None:
            keys.append(("artist", a))
        for k in keys:
            j = first.setdefault(k, i)
            if j != i:
                parent[find(i)] = find(j)
    members: dict[int, list[int]] = defaultdict(list)
    for i in range(len(tracks)):
        members[find(i)].append(i)
    return list(members.values())


def _assign(groups: list[list[int]], labels: list[str], fractions: tuple[float, float, float],
            rng: random.Random) -> list[int]:
    """Greedy stratified assignment of groups to splits; returns the split index of each group.

    Groups are taken largest first (random order among equals); each goes to the split
    where it most reduces the squared gap between per-class counts and their targets
    (``fraction * class total``), every class weighted by ``1 / class total``.
    """
    classes = sorted(set(labels))
    total = Counter(labels)
    hist = [Counter(labels[i] for i in g) for g in groups]
    order = list(range(len(groups)))
    rng.shuffle(order)
    order.sort(key=lambda gi: -len(groups[gi]))
    active = [s for s, f in enumerate(fractions) if f > 0]
    count = [{c: 0 for c in classes} for _ in fractions]
    target = [{c: f * total[c] for c in classes} for f in fractions]
    where = [0] * len(groups)
    for gi in order:
        # change in the squared gap if group gi joins split s; random tie-break
        costs = [(round(sum((n * n + 2 * n * (count[s][c] - target[s][c])) / total[c] ** 2
                            for c, n in hist[gi].items()), 12), rng.random(), s) for s in active]
        s = min(costs)[2]
        where[gi] = s
        for c, n in hist[gi].items():
            count[s][c] += n
    _fill_empty(where, groups, active, rng)
    return where


def _fill_empty(where: list[int], groups: list[list[int]], active: list[int], rng: random.Random) -> None:
    """Give every split with a positive fraction at least one group, when there are enough groups."""
    if len(groups) < len(active):
        return
    for s in active:
        if s in where:
            continue
        by_split = Counter(where)
        donor = max((d for d in active if by_split[d] > 1), key=lambda d: by_split[d], default=None)
        if donor is None:
            return
        movable = [gi for gi, w in enumerate(where) if w == donor]
        smallest = min(len(groups[gi]) for gi in movable)
        where[rng.choice([gi for gi in movable if len(groups[gi]) == smallest])] = s


def split_tracks(tracks: Sequence[Track], fractions: Sequence[float] = DEFAULT_FRACTIONS, *,
                 seed: int = 0) -> list[Track]:
    """Split tracks into train / valid / test, stratified by label, keeping artists together.

    Parameters
    ----------
    tracks : sequence of Track
        Tracks to split; their current ``split`` is ignored.
    fractions : (float, float, float)
        Wanted share of tracks in train, valid and test (default 70/15/15). A fraction of
        0 leaves that split empty.
    seed : int
        Seed of the random tie-breaking; the same seed gives the same split.

    Returns
    -------
    list of Track
        The same tracks in the same order, with ``split`` set. Tracks that share an artist
        (compared by :func:`artist_key`), a track id or a file always share a split, so the
        class proportions are only as close to ``fractions`` as the artist groups allow.
    """
    fr = _check_fractions(fractions)
    tracks = list(tracks)
    if not tracks:
        return []
    groups = _groups(tracks)
    where = _assign(groups, [t.label for t in tracks], fr, random.Random(seed))
    out = list(tracks)
    for gi, g in enumerate(groups):
        for i in g:
            out[i] = tracks[i].replace(split=SPLITS[where[gi]])
    return out


def split_manifest(manifest: Manifest, fractions: Sequence[float] = DEFAULT_FRACTIONS, *, seed: int = 0,
                   policy: str = "stratified") -> Manifest:
    """:func:`split_tracks` applied to a manifest's entries; records ``policy`` in the result."""
    if policy == "artist" and not any(t.artist for t in manifest.entries):
        raise DatasetError(f"{manifest.root}: split 'artist' needs artist names, and this {manifest.layout} "
                           "dataset has none; use 'stratified' for a track-level split")
    return manifest.with_entries(split_tracks(manifest.entries, fractions, seed=seed), split_policy=policy)


def find_leakage(manifest: Manifest) -> list[str]:
    """Every track id, file or artist that appears in more than one split, as messages."""
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    for t in manifest.entries:
        if t.split is None:
            continue
        seen[("track", t.track_id)].add(t.split)
        seen[("file", os.path.abspath(t.path))].add(t.split)
        a = artist_key(t.artist)
        if a is not None:
            seen[("artist", a)].add(t.split)
    return [f"{kind} {name!r} is in {', '.join(s for s in SPLITS if s in splits)}"
            for (kind, name), splits in sorted(seen.items()) if len(splits) > 1]


def check_no_leakage(manifest: Manifest) -> None:
    """Raise :class:`DatasetError` if a track id, file or artist appears in two splits.

    Tracks without a split are ignored. Artists are compared by :func:`artist_key`.
    """
    problems = find_leakage(manifest)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise DatasetError(f"{manifest.root or 'manifest'}: split leakage: {shown}")


__all__ = ["DEFAULT_FRACTIONS", "artist_key", "split_tracks", "split_manifest", "find_leakage",
           "check_no_leakage"]
