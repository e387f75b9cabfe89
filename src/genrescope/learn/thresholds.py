"""Per-label confidence thresholds: write a genre only where the learner is sure enough.

From out-of-fold predictions (every track scored by a head that never saw its artist), the
threshold of a label is the lowest probability ``t`` such that, of the tracks predicted as
that label with probability ``t`` or more, at least ``min_precision`` really carry it. A label
that never reaches it gets no threshold (None): it is never written.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Default of ``--min-precision``.
MIN_PRECISION = 0.8


def label_thresholds(probs: np.ndarray, y: np.ndarray, min_precision: float = MIN_PRECISION
                     ) -> list[float | None]:
    """One threshold per label (None: never sure enough).

    Parameters
    ----------
    probs : np.ndarray
        (N, G) out-of-fold probabilities.
    y : np.ndarray
        (N,) true label indices.
    min_precision : float
        The precision the written genres must reach, in (0, 1].
    """
    pred, conf = probs.argmax(1), probs.max(1)
    out: list[float | None] = []
    for g in range(probs.shape[1]):
        mine = np.flatnonzero(pred == g)
        order = mine[np.argsort(-conf[mine], kind="stable")]
        correct = np.cumsum(y[order] == g)
        precision = correct / np.arange(1, len(order) + 1)
        ok = np.flatnonzero(precision >= min_precision)
        # the lowest confidence whose top-down precision still holds; ties at that confidence all count
        out.append(float(conf[order[ok[-1]]]) if len(ok) else None)
    return out


@dataclass
class Coverage:
    """What writing at the thresholds would have done on the out-of-fold predictions."""

    written: int
    correct: int
    total: int

    @property
    def precision(self) -> float:
        return self.correct / self.written if self.written else float("nan")

    @property
    def coverage(self) -> float:
        return self.written / self.total if self.total else float("nan")


def passes(prob: float, threshold: float | None) -> bool:
    """True when a track whose best label has ``prob`` may be written with that label."""
    return threshold is not None and prob >= threshold - 1e-9


def coverage(probs: np.ndarray, y: np.ndarray, thresholds: list[float | None]) -> Coverage:
    """How many tracks the thresholds let through, and how many of those were right."""
    pred, conf = probs.argmax(1), probs.max(1)
    ok = np.array([passes(c, thresholds[p]) for p, c in zip(pred, conf)], dtype=bool)
    return Coverage(int(ok.sum()), int((ok & (pred == y)).sum()), len(y))


def label_precision(probs: np.ndarray, y: np.ndarray, thresholds: list[float | None]) -> list[float | None]:
    """Per label, the out-of-fold precision of the tracks its threshold lets through (None: none)."""
    pred, conf = probs.argmax(1), probs.max(1)
    out: list[float | None] = []
    for g, t in enumerate(thresholds):
        ok = (pred == g) & np.array([passes(c, t) for c in conf], dtype=bool)
        out.append(float(np.mean(y[ok] == g)) if ok.any() else None)
    return out
