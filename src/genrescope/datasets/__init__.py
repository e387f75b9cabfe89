"""Labelled music collections: one loader per layout, a common manifest, leak-free splits.

Layouts: a folder per genre, GTZAN (Marsyas and Kaggle copies), FMA (with
``tracks.csv``) and a hand-written CSV manifest. :func:`load_dataset` detects the
layout, loads it and splits it by track and artist.

>>> from genrescope.datasets import load_dataset, check_no_leakage
>>> m = load_dataset("data/gtzan", split="gtzan-ff")          # doctest: +SKIP
>>> m.counts()["jazz"]                                         # doctest: +SKIP
{'train': 42, 'valid': 17, 'test': 27, 'none': 0, 'total': 86}
"""
from __future__ import annotations

from genrescope.datasets.layouts import LAYOUTS, SPLIT_POLICIES, apply_split_policy, detect_layout, load_dataset
from genrescope.datasets.manifest import SPLITS, Manifest, Skipped, Track, read_csv_manifest
from genrescope.datasets.splits import DEFAULT_FRACTIONS, check_no_leakage, find_leakage, split_tracks

__all__ = ["LAYOUTS", "SPLIT_POLICIES", "SPLITS", "DEFAULT_FRACTIONS", "Track", "Skipped", "Manifest",
           "load_dataset", "detect_layout", "apply_split_policy", "read_csv_manifest", "split_tracks",
           "check_no_leakage", "find_leakage"]
