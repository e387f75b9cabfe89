"""``genrescope evaluate`` and ``genrescope compare``: honest scores, plots and tables.

Evaluation runs the model exactly as prediction does (:class:`genrescope.inference.predict.Predictor`,
ONNX Runtime by default) on a split the model was not selected on, and reports
window-level and track-level accuracy and macro-F1, per-class precision and recall, and
the confusion matrix, always saying which split and how many tracks.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from genrescope.errors import GenrescopeError
from genrescope.training.metrics import Report, score


# ---------------------------------------------------------------- plots
def _plt():
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(report: Report, path: Path, title: str) -> Path | None:
    """Row-normalised confusion matrix with counts, as PNG."""
    plt = _plt()
    if plt is None:
        return None
    c = report.confusion
    norm = c / np.maximum(c.sum(axis=1, keepdims=True), 1)
    n = len(report.labels)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * n, 0.8 + 0.55 * n), dpi=110)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), report.labels, rotation=45, ha="right")
    ax.set_yticks(range(n), report.labels)
    for i in range(n):
        for j in range(n):
            if c[i, j]:
                ax.text(j, i, str(c[i, j]), ha="center", va="center", color="white" if norm[i, j] > 0.5 else "black",
                        fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}\naccuracy {report.accuracy:.3f}, macro-F1 {report.macro_f1:.3f}, n={report.n}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_learning_curves(history: list[dict], path: Path) -> Path | None:
    """Training loss and validation scores per epoch, as PNG."""
    plt = _plt()
    if plt is None or not history:
        return None
    ep = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=110)
    a.plot(ep, [h["train_loss"] for h in history], marker="o", ms=3)
    a.set_xlabel("epoch")
    a.set_ylabel("training loss")
    for key, lab in (("track_accuracy", "track accuracy"), ("track_macro_f1", "track macro-F1"),
                     ("window_accuracy", "window accuracy")):
        b.plot(ep, [h[key] for h in history], marker="o", ms=3, label=lab)
    b.set_xlabel("epoch")
    b.set_ylabel("validation")
    b.set_ylim(0, 1.02)
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_plots(out: Path, history: list[dict], result: dict, labels: list[str]) -> list[Path]:
    """Learning curves and the confusion matrix of ``result`` (an evaluate_split dict)."""
    paths = [plot_learning_curves(history, out / "learning_curves.png")]
    rep = result.get("report")
    if isinstance(rep, Report):
        paths.append(plot_confusion(rep, out / f"confusion_{result['split']}.png",
                                    f"{result['split']} split, track level"))
    return [p for p in paths if p]


# ---------------------------------------------------------------- scoring
def evaluate_table(model, csv_path: str, split: str | None = None) -> Report:
    """Score a table model on a GTZAN-features-style CSV (rows of ``split`` if given)."""
    from genrescope.features.gtzan_table import read_table

    names, X, labels, splits = read_table(csv_path)
    if split is not None:
        if splits is None:
            raise GenrescopeError(f"{csv_path}: no split column, so --eval-split {split} cannot be applied")
        keep = [i for i, s in enumerate(splits) if s == split]
        if not keep:
            raise GenrescopeError(f"{csv_path}: no rows with split {split!r}")
        X, labels = X[keep], [labels[i] for i in keep]
    if model.kind != "table":
        raise GenrescopeError(f"{model.name} reads {model.kind} input, not feature-table rows")
    unknown = sorted(set(labels) - set(model.labels))
    if unknown:
        raise GenrescopeError(f"{csv_path}: labels {unknown} are not among the model's {model.labels}")
    probs = model.predict_windows(X.astype(np.float32))
    y = np.array([model.labels.index(lab) for lab in labels])
    return score(y, probs.argmax(1), model.labels)


def evaluate_dataset(predictor, manifest, split: str, *, jobs: int = 1, progress: bool = False) -> dict:
    """Track- and window-level scores of a predictor on one split of a manifest."""
    from genrescope.inference.predict import predict_files

    tracks = [t for t in manifest.entries if t.split == split]
    if not tracks:
        raise GenrescopeError(f"the dataset has no tracks in split {split!r}")
    labels = predictor.labels
    unknown = sorted({t.label for t in tracks} - set(labels))
    if unknown:
        raise GenrescopeError(f"dataset labels {unknown} are not among the model's {labels}")
    preds = predict_files(predictor, [Path(t.path) for t in tracks], jobs=jobs, progress=progress)
    ok = [(t, p) for t, p in zip(tracks, preds) if p.error is None]
    failed = [(t.path, p.error) for t, p in zip(tracks, preds) if p.error is not None]
    if not ok:
        raise GenrescopeError(f"none of the {len(tracks)} tracks of split {split!r} could be analysed; "
                              f"the first: {failed[0][1]}")
    y = np.array([labels.index(t.label) for t, _ in ok])
    track_pred = np.array([p.timeline.track().argmax() for _, p in ok])
    win_true = np.concatenate([np.full(len(p.timeline.probs), labels.index(t.label)) for t, p in ok])
    win_pred = np.concatenate([p.timeline.probs.argmax(1) for _, p in ok])
    return {"split": split, "tracks": len(ok), "failed": failed, "track": score(y, track_pred, labels),
            "window": score(win_true, win_pred, labels)}


# ---------------------------------------------------------------- compare
COMPARE_COLUMNS = ("model", "architecture", "params", "valid_track_acc", "valid_track_f1", "test_track_acc",
                   "test_track_f1", "test_window_acc", "best_epoch", "sec_per_epoch")


def compare_rows(paths: list[str]) -> list[dict]:
    """One row per checkpoint from the metrics stored inside it (no recomputation)."""
    from genrescope.models.checkpoint import read_header, read_metadata

    rows = []
    for p in paths:
        meta = read_metadata(p)
        header = read_header(p)
        n_params = sum(int(np.prod(v["shape"])) for k, v in header.items()
                       if isinstance(v, dict) and "shape" in v and "running" not in k and "num_batches" not in k)
        metrics = meta.get("metrics") or {}
        v, t = metrics.get("valid", {}), metrics.get("test", {})
        hist = Path(p).parent / "metrics.csv"
        secs = None
        if hist.is_file():
            with open(hist) as f:
                s = [float(r["seconds"]) for r in csv.DictReader(f)]
            secs = round(float(np.median(s)), 2) if s else None
        rows.append({"model": str(p), "architecture": meta.get("model_name"), "params": n_params,
                     "valid_track_acc": v.get("track_accuracy"), "valid_track_f1": v.get("track_macro_f1"),
                     "test_track_acc": t.get("track_accuracy"), "test_track_f1": t.get("track_macro_f1"),
                     "test_window_acc": t.get("window_accuracy"), "best_epoch": meta.get("epoch"),
                     "sec_per_epoch": secs})
    return rows


def format_markdown(rows: list[dict]) -> str:
    def cell(v):
        return "" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))

    lines = ["| " + " | ".join(COMPARE_COLUMNS) + " |", "|" + "---|" * len(COMPARE_COLUMNS)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in COMPARE_COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def rank_key(row: dict) -> tuple:
    """Best first: test macro-F1 where there is one (0.0 is a score, not a gap), else valid; none last."""
    f1 = row["test_track_f1"] if row["test_track_f1"] is not None else row["valid_track_f1"]
    return (f1 is None, -(f1 or 0.0))
