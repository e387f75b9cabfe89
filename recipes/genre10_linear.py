"""Ship genre10 as logistic regression on standardised track-mean embeddings of both taggers.

    python recipes/genre10.py cv && python recipes/genre10.py ship-linear

Refuses unless ``cv`` (``genre10_cv.py``) found the candidate better than today's recipe
(:func:`beats`). The model is fitted on all 338 FF train + valid tracks (C by the same inner
grouped 3-fold CV as in ``cv``) and written through the existing features-mlp path with no
hidden layer: the scaler's mean and std go into the model's standardisation buffers, the
coefficients into its one linear layer, so the checkpoint, ONNX file and every consumer
(predict, tag, serve, the web export, the browser) stay as they are.

Window vs track: the head answers per window (the timeline), and genrescope's track answer is
the mean of the window probabilities. The regression is fitted on track means; the mean of its
per-window logits equals its logits on the track mean, but the mean of per-window
probabilities does not. ``cv`` scores both (``lr-mean``: on the track mean; ``lr-mean@win``:
windows averaged as genrescope does) and the decision uses ``lr-mean@win``, what ships.
"""
from __future__ import annotations

import dataclasses
import json
import sys

import numpy as np

#: the candidate that ships (the shipped head's own aggregation) and the one it must beat
CANDIDATE, BASELINE = "lr-mean@win", "head-aug"


def beats(cv: dict, candidate: str = CANDIDATE, baseline: str = BASELINE) -> tuple[bool, str]:
    """Whether ``candidate`` beats ``baseline`` by more than the fold noise, and why.

    Rule: on the repeated grouped folds, the fold-paired accuracy difference is more than twice
    its standard error and the macro-F1 mean over repeats is higher; on the FF swap, neither
    pooled accuracy nor macro-F1 is lower by more than one standard error."""
    c, b = cv["repeated"][candidate], cv["repeated"][baseline]
    d = c["fold_accuracy_diff"]
    fc, fb = cv["ff_swap"][candidate], cv["ff_swap"][baseline]
    checks = {f"fold-paired accuracy difference {d['mean']:+.3f} > 2 x se {d['se']:.3f}": d["mean"] > 2 * d["se"],
              f"macro-F1 {c['macro_f1']['mean']:.3f} > {b['macro_f1']['mean']:.3f}":
                  c["macro_f1"]["mean"] > b["macro_f1"]["mean"],
              f"FF swap accuracy {fc['accuracy']:.3f} >= {fb['accuracy']:.3f} - se {fb['accuracy_se']:.3f}":
                  fc["accuracy"] >= fb["accuracy"] - fb["accuracy_se"],
              f"FF swap macro-F1 {fc['macro_f1']:.3f} >= {fb['macro_f1']:.3f} - se {fb['macro_f1_se']:.3f}":
                  fc["macro_f1"] >= fb["macro_f1"] - fb["macro_f1_se"]}
    return all(checks.values()), "; ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in checks.items())


def linear_head(pipeline, n_classes: int):
    """A features-mlp with no hidden layer that computes ``pipeline``'s decision function."""
    import torch

    from genrescope.config import MUSICNN_FEATURES
    from genrescope.models import build_model, default_config

    scaler, lr = pipeline[0], pipeline[-1]
    if list(lr.classes_) != list(range(n_classes)):
        raise ValueError(f"the regression saw classes {list(lr.classes_)}, not all {n_classes}")
    cfg = default_config("features-mlp", feature_config=MUSICNN_FEATURES, n_classes=n_classes)
    cfg = dataclasses.replace(cfg, n_bins=len(scaler.mean_), hidden=(), dropout=0.0)
    model = build_model("features-mlp", cfg).eval()
    model.set_standardization(scaler.mean_, scaler.scale_)
    last = model.head[-1]
    with torch.no_grad():
        last.weight.copy_(torch.as_tensor(lr.coef_, dtype=torch.float32))
        last.bias.copy_(torch.as_tensor(lr.intercept_, dtype=torch.float32))
    return model


def check_parity(model, pipeline, windows: list[np.ndarray]) -> float:
    """Largest |logit| difference between the torch head and the regression over all windows."""
    import torch

    X = np.concatenate(windows).astype(np.float32)
    with torch.no_grad():
        ours = model(torch.from_numpy(X)).numpy()
    return float(np.abs(ours - pipeline.decision_function(X)).max())


def candidate_figures(cv: dict) -> dict:
    """Each candidate's figures from ``cv``: metric mean and sd over repeats, fold spread, FF swap."""
    keep = ("accuracy", "macro_f1", "top3", "log_loss", "ece")
    return {name: {m: {k: s[m][k] for k in ("mean", "sd")} for m in keep}
            | {"fold_accuracy_sd": s["fold_accuracy_sd"], "ff_swap": cv["ff_swap"][name]}
            | ({"fold_accuracy_diff": s["fold_accuracy_diff"]} if "fold_accuracy_diff" in s else {})
            for name, s in cv["repeated"].items()}


def record_comparison(cv: dict, why: str, command: str) -> None:
    """Keep the shipped genre10 and add the comparison to its config.json's selection."""
    from genre10 import PRETRAINED

    path = PRETRAINED / "genre10" / "config.json"
    config = json.loads(path.read_text())
    config["selection"]["rederived"] = {
        "protocol": cv["protocol"], "candidate": CANDIDATE, "baseline": BASELINE, "shipped": False,
        "rule": why, "candidates": candidate_figures(cv), "command": command}
    path.write_text(json.dumps(config, indent=2) + "\n")


def run_ship_linear(args) -> None:
    from genre10 import write_genre10
    from genrescope.config import MUSICNN_FEATURES
    from genre10_cv import fit_sklearn, inner_splits, load_all
    from gtzan_folds import load_gtzan, proxy_groups

    cv = json.loads((args.out / "cv.json").read_text())
    ok, why = beats(cv)
    print(f"{CANDIDATE} vs {BASELINE}: {why}", file=sys.stderr)
    command = (f"python recipes/genre10.py cv --repeats {args.repeats} --k {args.k} --block {args.block} "
               f"&& python recipes/genre10.py ship-linear")
    if not ok:
        record_comparison(cv, why, command)
        print("ship-linear: not shipped (the candidate does not beat today's head on the protocol); the comparison "
              "is recorded in genre10's config.json", file=sys.stderr)
        return
    manifest = load_gtzan()
    tracks, classes = list(manifest.entries), list(manifest.labels)
    y = np.array([classes.index(t.label) for t in tracks])
    W = load_all(args.cache, tracks, ("clean",))
    X = W.pooled("clean", range(len(tracks)), "mean")
    pipe = fit_sklearn("lr", X, y, inner_splits(y, proxy_groups(tracks, args.block), 1, args.seed), args.seed)
    model = linear_head(pipe, len(classes))
    gap = check_parity(model, pipe, [W.by_variant["clean"][t.track_id] for t in tracks])
    if gap > 1e-3:
        raise RuntimeError(f"the torch head differs from the regression by {gap:.2e} in a logit")
    figures = candidate_figures(cv)
    prov = {"backbone": "musicnn", "backbone_blocks": ["embeddings"],
            "dataset": {"name": "GTZAN, fault-filtered train + valid (338 tracks; FF test never seen)",
                        "root": "../shared/data/gtzan/audio", "augmentation": ["clean"]},
            "command": command,
            "selection": {"protocol": cv["protocol"], "chosen": {"features": "both-emb", "pooling": "track mean",
                                                                 "head": "logistic regression (standardised)",
                                                                 "C": float(pipe[-1].C), "augmented": False},
                          "rule": why, "candidates": figures,
                          "previous": "features-mlp linear head on windows, domain-augmented, 8 epochs "
                                      f"(candidate {BASELINE})"},
            "note": "fitted on the mean embedding of each track; answers per window, and the track answer is "
                    "the mean of the window probabilities (as scored by the lr-mean@win candidate)"}
    dest = write_genre10(model, MUSICNN_FEATURES, classes, prov)
    print(f"shipped genre10 -> {dest}: logistic regression, C {pipe[-1].C}, largest logit gap to the "
          f"regression {gap:.1e}")

