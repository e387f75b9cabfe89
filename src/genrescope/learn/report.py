"""What ``genrescope learn`` prints: the taxonomy before training, honest figures after.

Every figure after training comes from the out-of-fold predictions of the grouped, nested
cross-validation (:mod:`genrescope.learn.learner`): each track scored by a head that never
saw its artist.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from genrescope.learn.taxonomy import Taxonomy
from genrescope.learn.thresholds import Coverage


def taxonomy_table(tax: Taxonomy, *, untagged: int, min_tracks: int) -> str:
    """The labels it will learn with their track counts and merged spellings, then what is left out."""
    lines = [f"taxonomy: {len(tax.labels)} labels, {sum(tax.counts.values())} labelled tracks"]
    width = max([len(lab) for lab in tax.labels] + [5])
    for lab in tax.labels:
        other = [s for s in tax.spellings.get(lab, {}) if s != lab]
        also = f"  (also spelled: {', '.join(sorted(other)[:6])})" if other else ""
        lines.append(f"  {lab:<{width}}  {tax.counts[lab]:5d}{also}")
    if tax.rare:
        rare = ", ".join(f"{lab} ({n})" for lab, n in tax.rare.items())
        lines.append(f"left out, fewer than {min_tracks} tracks (--min-tracks): {rare}")
    if tax.dropped:
        lines.append("dropped by the alias file: " + ", ".join(f"{g} ({n})" for g, n in tax.dropped.items()))
    lines.append(f"untagged files (no genre; what `genrescope tag` will label): {untagged}")
    return "\n".join(lines)


def _mean_sd(values: list[float]) -> str:
    v = np.asarray(values, dtype=np.float64)
    sd = v.std(ddof=1) if len(v) > 1 else 0.0
    return f"{v.mean():.3f} ± {sd:.3f}"


def cv_figures(labels: list[str], y: np.ndarray, probs: np.ndarray, fold_acc: list[float], fold_f1: list[float],
               thresholds: list[float | None], cov: Coverage) -> dict:
    """The cross-validation figures kept in the model's ``config.json``."""
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    pred = probs.argmax(1)
    idx = list(range(len(labels)))
    prec, rec, _, support = precision_recall_fscore_support(y, pred, labels=idx, zero_division=0)
    return {
        "folds": len(fold_acc), "tracks": int(len(y)),
        "accuracy": float(np.mean(pred == y)), "macro_f1": float(f1_score(y, pred, labels=idx, average="macro",
                                                                          zero_division=0)),
        "fold_accuracy": [round(a, 4) for a in fold_acc], "fold_macro_f1": [round(f, 4) for f in fold_f1],
        "accuracy_fold_sd": float(np.std(fold_acc, ddof=1)) if len(fold_acc) > 1 else 0.0,
        "macro_f1_fold_sd": float(np.std(fold_f1, ddof=1)) if len(fold_f1) > 1 else 0.0,
        "ece": expected_calibration_error(probs, y),
        "per_label": {lab: {"tracks": int(support[i]), "precision": round(float(prec[i]), 4),
                            "recall": round(float(rec[i]), 4)} for i, lab in enumerate(labels)},
        "confusions": [{"true": labels[t], "predicted": labels[p], "tracks": n} for (t, p), n in confusions(y, pred)],
        "at_thresholds": {"written": cov.written, "correct": cov.correct, "precision": cov.precision,
                          "coverage": cov.coverage},
    }


def confusions(y: np.ndarray, pred: np.ndarray, top: int = 5) -> list[tuple[tuple[int, int], int]]:
    """The ``top`` commonest (true, predicted) pairs among the mistakes."""
    return Counter((int(t), int(p)) for t, p in zip(y, pred) if t != p).most_common(top)


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """ECE of the top-1 confidence: the mean gap between confidence and accuracy, over 10 bins."""
    conf, hit = probs.max(1), probs.argmax(1) == y
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    return float(sum(abs(conf[which == b].mean() - hit[which == b].mean()) * (which == b).sum()
                     for b in range(bins) if (which == b).any()) / len(y))


def results_text(labels: list[str], figs: dict, thresholds: list[float | None], min_precision: float,
                 chosen: dict) -> str:
    """The figures after training, as printed."""
    lines = [f"cross-validation ({figs['folds']} folds grouped by artist, nested; {figs['tracks']} tracks):",
             f"  accuracy {_mean_sd(figs['fold_accuracy'])}  (fold mean ± sd; pooled {figs['accuracy']:.3f})",
             f"  macro-F1 {_mean_sd(figs['fold_macro_f1'])}  (pooled {figs['macro_f1']:.3f})",
             f"  calibration error (ECE, held-out folds) {figs['ece']:.3f}",
             f"  head chosen: {chosen.get('kind')} C={chosen.get('C'):g}"
             + (f" gamma={chosen['gamma_x_features']:g}/F" if chosen.get("gamma_x_features") else "")
             + f", temperature {chosen.get('temperature', 1.0):.2f}"]
    width = max([len(lab) for lab in labels] + [5])
    lines.append(f"  {'label':<{width}}  tracks  precision  recall  writes at")
    for lab, t in zip(labels, thresholds):
        pl = figs["per_label"][lab]
        at = f"p >= {t:.2f}" if t is not None else f"never (precision {min_precision:g} not reached)"
        lines.append(f"  {lab:<{width}}  {pl['tracks']:6d}  {pl['precision']:9.3f}  {pl['recall']:6.3f}  {at}")
    if figs["confusions"]:
        lines.append("  commonest confusions: " + "; ".join(f"{c['true']} -> {c['predicted']} ({c['tracks']})"
                                                         for c in figs["confusions"]))
    at = figs["at_thresholds"]
    prec = "n/a" if not at["written"] else f"{at['precision']:.3f}"
    lines.append(f"at the thresholds (target precision {min_precision:g}): it would write {at['written']} of "
                 f"{figs['tracks']} held-out tracks (coverage {at['coverage']:.3f}), precision {prec}")
    return "\n".join(lines)
