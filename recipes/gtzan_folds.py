"""The GTZAN data and folds the genre10 recipe and the architecture benchmark share.

Data: the 338 readable tracks of the fault-filtered (FF) train and valid splits in
``../shared/data/gtzan/audio``. ``fold_manifest`` gives the two artist-disjoint folds of the FF
split (A: fit FF train, score FF valid; B: the swap); ``proxy_groups`` and ``repeated_folds``
give repeated grouped stratified K-fold over all 338 tracks (see :func:`proxy_groups` for
what the grouping can and cannot promise); ``scores`` turns a confusion matrix into accuracy
and macro-F1 with standard errors.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

SHARED_AUDIO = Path(__file__).resolve().parents[2] / "shared" / "data" / "gtzan" / "audio"


def load_gtzan():
    from genrescope.datasets import load_dataset

    return load_dataset(SHARED_AUDIO, layout="gtzan")


def stop_set(tracks, frac: float, seed: int) -> set[str]:
    """Track ids held out for early stopping: ``frac`` of each genre with 3+ tracks (at least one)."""
    rng = np.random.default_rng(seed)
    held: set[str] = set()
    for g in sorted({t.label for t in tracks}):
        ids = sorted(t.track_id for t in tracks if t.label == g)
        if len(ids) >= 3:
            held |= set(rng.choice(ids, size=max(1, round(frac * len(ids))), replace=False))
    return held


def fold_manifest(manifest, fold: str, seed: int = 0, per_genre: int | None = None):
    """The manifest re-split for one fold: train / valid (early stopping) / test (scored)."""
    from genrescope.datasets import Manifest

    fit_side, test_side = ("train", "valid") if fold == "A" else ("valid", "train")
    fit = [t for t in manifest.entries if t.split == fit_side]
    if per_genre is not None:
        rng = np.random.default_rng(seed)
        keep = []
        for g in sorted({t.label for t in fit}):
            ids = [t for t in fit if t.label == g]
            keep += [ids[i] for i in sorted(rng.choice(len(ids), min(per_genre, len(ids)), replace=False))]
        fit = keep
    held = stop_set(fit, 0.15, seed)
    entries = [dataclasses.replace(t, split="valid" if t.track_id in held else "train") for t in fit]
    entries += [dataclasses.replace(t, split="test") for t in manifest.entries if t.split == test_side]
    return Manifest(list(manifest.labels), entries, [])


def pairs_from_confusion(conf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(y_true, y_pred) with one row per scored track, rebuilt from a confusion matrix."""
    t, p = np.nonzero(conf)
    reps = conf[t, p].astype(int)
    return np.repeat(t, reps), np.repeat(p, reps)


def scores(conf: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict:
    """Accuracy and macro-F1 with standard errors, per-genre recall, from a confusion matrix
    (macro-F1 as everywhere in genrescope: :class:`genrescope.training.metrics.Report`)."""
    from genrescope.training.metrics import Report, score

    names = [str(c) for c in range(conf.shape[0])]
    rep = Report(names, np.asarray(conf))
    y, p = pairs_from_confusion(np.asarray(conf))
    n, acc = rep.n, rep.accuracy
    rng = np.random.default_rng(seed)
    boot = [score(y[i], p[i], names).macro_f1 for i in (rng.integers(0, n, n) for _ in range(n_boot))]
    recall = [float(r) if s else None for r, s in zip(rep.recall, rep.support)]
    return {"n": n, "accuracy": acc, "accuracy_se": float(np.sqrt(acc * (1 - acc) / n)),
            "macro_f1": rep.macro_f1, "macro_f1_se": float(np.std(boot)), "recall": recall,
            "confusion": np.asarray(conf).astype(int).tolist()}


def proxy_groups(tracks, block: int = 10) -> np.ndarray:
    """A stand-in artist group per track: its genre and its number's block of ``block``.

    GTZAN has no artist labels, but each genre's excerpts come in artist runs (consecutive
    numbers are often one artist: reggae 0-35 or so are nearly all Bob Marley), so
    ``blues.00012`` falls in group ``blues/1`` with blues 10-19. This is a proxy, not a
    guarantee: a run that crosses a block boundary (or an artist who comes back later in the
    genre, or one who appears in two genres) still straddles folds, so grouped scores here
    can still be a little optimistic; the FF split (artist-disjoint by hand) is the check.
    """
    return np.array([f"{t.label}/{int(t.track_id.rsplit('.', 1)[1]) // block}" for t in tracks])


def repeated_folds(tracks, repeats: int = 5, k: int = 5, block: int = 10,
                   seed: int = 0) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """(repeat, fold, fit indices, scored indices) of ``repeats`` x ``k`` grouped stratified
    K-fold over ``tracks``: each proxy group (:func:`proxy_groups`) on one side only."""
    from sklearn.model_selection import StratifiedGroupKFold

    y = np.array([t.label for t in tracks])
    groups = proxy_groups(tracks, block)
    out = []
    for r in range(repeats):
        cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed + r)
        for f, (fit_idx, test_idx) in enumerate(cv.split(np.zeros(len(y)), y, groups)):
            out.append((r, f, fit_idx, test_idx))
    return out
