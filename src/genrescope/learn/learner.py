"""The learner: a calibrated head for small, uneven, noisy libraries, chosen by nested CV.

Candidates (every one on standardised features, classes weighted inversely to their size):

* ``linear``: multinomial logistic regression, L2 strength ``C``;
* ``rbf``: the same logistic regression on an RBF kernel expansion over the training tracks
  (``exp(-gamma |z - z_j|^2)``: the RBF-SVM's kernel with a logistic loss, so the head gives
  probabilities of its own and is three matrix products in ONNX).

Nested cross-validation, folds grouped (by artist; :attr:`genrescope.learn.labels.Track.group`)
so one artist's tracks never sit on both sides: the outer folds give the honest figures and
the out-of-fold probabilities; inside each outer training part, inner folds choose the
candidate and its hyper-parameters (by macro-F1) and a softmax temperature (by log loss on the
inner out-of-fold logits). The final head is chosen the same way on every track and fitted on all.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

import numpy as np

from genrescope.errors import GenrescopeError

log = logging.getLogger(__name__)

#: The candidates: (kind, C, gamma x n_features).
CANDIDATES = (("linear", 0.01, None), ("linear", 0.1, None), ("linear", 1.0, None),
              ("rbf", 10.0, 0.5), ("rbf", 10.0, 2.0))
MAX_LANDMARKS = 2000
_TEMPERATURES = np.exp(np.linspace(np.log(0.05), np.log(5.0), 61))


@dataclass
class Head:
    """A fitted head on (F,) track features; see :mod:`genrescope.learn.onnx_head` for its graph.

    ``z = (x - mean) / scale``; ``linear``: logits ``z W + b``; ``rbf``: logits
    ``exp(-gamma |z - L_j|^2) W + b``. The temperature is already folded into W and b.
    """

    kind: str
    mean: np.ndarray  # (F,)
    scale: np.ndarray  # (F,)
    weight: np.ndarray  # (F, G) or (L, G)
    bias: np.ndarray  # (G,)
    landmarks: np.ndarray | None = None  # (L, F), standardised
    gamma: float = 0.0
    config: dict = field(default_factory=dict)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """(N, F) features -> (N, G) logits."""
        z = (np.asarray(x, np.float64) - self.mean) / self.scale
        if self.kind == "rbf":
            z = _kernel(z, self.landmarks, self.gamma)
        return z @ self.weight + self.bias

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(N, F) features -> (N, G) probabilities, rows summing to one."""
        return softmax(self.logits(x))


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _kernel(z: np.ndarray, landmarks: np.ndarray, gamma: float) -> np.ndarray:
    d = (z ** 2).sum(1)[:, None] - 2 * z @ landmarks.T + (landmarks ** 2).sum(1)[None, :]
    return np.exp(-gamma * np.maximum(d, 0.0))


def fit_head(x: np.ndarray, y: np.ndarray, n_classes: int, config: tuple, temperature: float = 1.0,
             seed: int = 0) -> Head:
    """Fit one candidate ``(kind, C, gamma x F)`` on features ``x`` (N, F) and labels ``y`` (N,)."""
    from sklearn.linear_model import LogisticRegression

    kind, c, g = config
    x = np.asarray(x, np.float64)
    mean, scale = x.mean(0), x.std(0)
    scale[scale < 1e-8] = 1.0
    z = (x - mean) / scale
    landmarks, gamma = None, 0.0
    if kind == "rbf":
        idx = np.arange(len(z))
        if len(idx) > MAX_LANDMARKS:
            idx = np.sort(np.random.default_rng(seed).choice(idx, MAX_LANDMARKS, replace=False))
        landmarks, gamma = z[idx], g / z.shape[1]
        z = _kernel(z, landmarks, gamma)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs' ConvergenceWarning at max_iter: still a usable fit
        lr = LogisticRegression(C=c, class_weight="balanced", max_iter=500).fit(z, y)
    weight = np.zeros((z.shape[1], n_classes))
    bias = np.full(n_classes, -30.0)  # a class missing from this training part: never predicted
    coef, icpt = lr.coef_, lr.intercept_
    if len(lr.classes_) == 2:  # sklearn's binary form: one row for class 1
        coef, icpt = np.vstack([-coef[0] / 2, coef[0] / 2]), np.array([-icpt[0] / 2, icpt[0] / 2])
    weight[:, lr.classes_] = coef.T / temperature
    bias[lr.classes_] = icpt / temperature
    return Head(kind, mean, scale, weight, bias, landmarks, gamma,
                {"kind": kind, "C": c, "gamma_x_features": g, "temperature": float(temperature)})


def group_folds(y: np.ndarray, groups: np.ndarray, n_folds: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index pairs, stratified by label, no group on both sides.

    Fewer groups than ``n_folds``: as many folds as groups. Raises GenrescopeError with fewer
    than two groups.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    k = min(n_folds, len(set(groups.tolist())))
    if k < 2:
        raise GenrescopeError("every labelled track belongs to one artist (or album or folder): cross-validation "
                              "needs tracks of at least two")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "least populated class has fewer members than n_splits"
        return list(StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(y, y, groups))


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The softmax temperature with the lowest log loss of ``logits`` (N, G) on labels ``y``."""
    best, best_t = np.inf, 1.0
    for t in _TEMPERATURES:
        p = softmax(logits / t)
        nll = -np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)))
        if nll < best:
            best, best_t = nll, float(t)
    return best_t


def macro_f1(y: np.ndarray, pred: np.ndarray, labels=None) -> float:
    from sklearn.metrics import f1_score

    labels = sorted(set(y.tolist())) if labels is None else labels
    return float(f1_score(y, pred, labels=labels, average="macro", zero_division=0))


def select(x: np.ndarray, y: np.ndarray, groups: np.ndarray, n_classes: int, *, n_folds: int = 3,
           seed: int = 0, candidates=CANDIDATES) -> tuple[tuple, float, float]:
    """(best candidate, its temperature, its inner macro-F1) by grouped CV on (x, y)."""
    try:
        folds = group_folds(y, groups, n_folds, seed)
    except GenrescopeError:  # one group only: nothing to choose with
        return candidates[1], 1.0, float("nan")
    best = None
    for cand in candidates:
        logits = np.zeros((len(y), n_classes))
        for tr, te in folds:
            logits[te] = fit_head(x[tr], y[tr], n_classes, cand, seed=seed).logits(x[te])
        score = macro_f1(y, logits.argmax(1))
        if best is None or score > best[2] + 1e-9:
            best = (cand, logits, score)
    cand, logits, score = best
    return cand, fit_temperature(logits, y), score


@dataclass
class CrossValidation:
    """What the outer folds say about the learner on this library.

    Attributes
    ----------
    probs : np.ndarray
        (N, G) out-of-fold calibrated probabilities: each track scored by a head that never saw
        its group.
    fold_accuracy, fold_macro_f1 : list of float
        Per outer fold.
    chosen : list of dict
        The candidate each outer fold's inner CV chose.
    """

    probs: np.ndarray
    fold_accuracy: list[float]
    fold_macro_f1: list[float]
    chosen: list[dict]


@dataclass
class Learnt:
    """A head fitted on every track, and the cross-validation that vouches for it."""

    head: Head
    cv: CrossValidation
    inner_macro_f1: float


def cross_validate(x: np.ndarray, y: np.ndarray, groups: np.ndarray, n_classes: int, *, n_folds: int = 5,
                   seed: int = 0, candidates=CANDIDATES, progress=None) -> CrossValidation:
    """Nested, grouped CV: out-of-fold probabilities and per-fold figures (module docstring)."""
    probs = np.zeros((len(y), n_classes))
    acc, f1, chosen = [], [], []
    folds = group_folds(y, groups, n_folds, seed)
    for i, (tr, te) in enumerate(folds, 1):
        cand, t, _ = select(x[tr], y[tr], groups[tr], n_classes, n_folds=3, seed=seed, candidates=candidates)
        head = fit_head(x[tr], y[tr], n_classes, cand, temperature=t, seed=seed)
        probs[te] = head.predict_proba(x[te])
        pred = probs[te].argmax(1)
        acc.append(float(np.mean(pred == y[te])))
        f1.append(macro_f1(y[te], pred))
        chosen.append(head.config)
        if progress:
            progress(f"fold {i}/{len(folds)}: accuracy {acc[-1]:.3f}, macro-F1 {f1[-1]:.3f} "
                     f"({head.config['kind']}, C={head.config['C']:g})")
    return CrossValidation(probs, acc, f1, chosen)


def learn_head(x: np.ndarray, y: np.ndarray, groups, n_classes: int, *, n_folds: int = 5, seed: int = 0,
               candidates=CANDIDATES, progress=None) -> Learnt:
    """Cross-validate the learner, then choose and fit the head on every track.

    Parameters
    ----------
    x : np.ndarray
        (N, F) track features (:func:`genrescope.learn.features.pool`).
    y : np.ndarray
        (N,) label indices in ``range(n_classes)``.
    groups : array-like
        (N,) who each track belongs to (artist); no group is on both sides of a fold.
    n_folds : int
        Outer folds (fewer when there are fewer groups).
    progress : callable, optional
        Called with a one-line message after each outer fold.
    """
    x, y, groups = np.asarray(x, np.float64), np.asarray(y, np.int64), np.asarray(groups)
    if len(set(y.tolist())) < 2:
        raise GenrescopeError("learning needs at least two labels with enough tracks")
    cv = cross_validate(x, y, groups, n_classes, n_folds=n_folds, seed=seed, candidates=candidates,
                        progress=progress)
    cand, t, score = select(x, y, groups, n_classes, n_folds=3, seed=seed, candidates=candidates)
    return Learnt(fit_head(x, y, n_classes, cand, temperature=t, seed=seed), cv, score)
