"""Classification metrics in plain numpy: accuracy, macro-F1, per-class precision and
recall, confusion matrix. Used by training (validation), evaluation and comparison."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from genrescope.errors import GenrescopeError


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts C[i, j] of items of true class i predicted as j, shape (n_classes, n_classes)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise GenrescopeError(f"confusion_matrix: {y_true.shape} true vs {y_pred.shape} predicted labels")
    if y_true.size and (min(y_true.min(), y_pred.min()) < 0 or max(y_true.max(), y_pred.max()) >= n_classes):
        raise GenrescopeError(f"confusion_matrix: class index outside 0..{n_classes - 1}")
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


@dataclass
class Report:
    """Scores of one set of predictions; ``n`` items, ``labels`` in class-index order."""

    labels: list[str]
    confusion: np.ndarray
    accuracy: float = field(init=False)
    macro_f1: float = field(init=False)
    precision: np.ndarray = field(init=False)
    recall: np.ndarray = field(init=False)
    f1: np.ndarray = field(init=False)
    support: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        c = self.confusion.astype(np.float64)
        tp = np.diag(c)
        pred_n, true_n = c.sum(axis=0), c.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.precision = np.where(pred_n > 0, tp / pred_n, 0.0)
            self.recall = np.where(true_n > 0, tp / true_n, 0.0)
            denom = self.precision + self.recall
            self.f1 = np.where(denom > 0, 2 * self.precision * self.recall / denom, 0.0)
        self.support = true_n.astype(np.int64)
        self.accuracy = float(tp.sum() / c.sum()) if c.sum() else 0.0
        present = true_n > 0  # macro-F1 over the classes that occur in the truth
        self.macro_f1 = float(self.f1[present].mean()) if present.any() else 0.0

    @property
    def n(self) -> int:
        return int(self.confusion.sum())

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "per_class": {lab: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                          for lab, p, r, f, s in zip(self.labels, self.precision, self.recall, self.f1,
                                                     self.support)},
            "labels": list(self.labels),
            "confusion": self.confusion.tolist(),
        }

    def format(self) -> str:
        """A plain-text table: per-class precision/recall/F1/support, then the totals."""
        w = max([len(lab) for lab in self.labels] + [9])
        lines = [f"{'class':<{w}}  precision  recall     f1  support"]
        for lab, p, r, f, s in zip(self.labels, self.precision, self.recall, self.f1, self.support):
            lines.append(f"{lab:<{w}}  {p:9.3f}  {r:6.3f}  {f:5.3f}  {s:7d}")
        lines.append(f"{'accuracy':<{w}}  {self.accuracy:9.3f}  (n={self.n})")
        lines.append(f"{'macro-F1':<{w}}  {self.macro_f1:9.3f}")
        return "\n".join(lines)


def score(y_true, y_pred, labels: list[str]) -> Report:
    """A :class:`Report` for integer class indices."""
    return Report(list(labels), confusion_matrix(y_true, y_pred, len(labels)))
