"""Repeated grouped cross-validation of genre10 head candidates, every candidate on the same folds.

    python recipes/genre10.py cv --cache runs/genre10-cache [--repeats 2 --k 5] [--families sklearn,head]

Folds: ``repeats`` x ``k`` grouped stratified K-fold over all 338 FF train + valid tracks, grouped
by the artist proxy of :func:`gtzan_folds.proxy_groups` (genre and block of 10 track numbers),
plus the FF train/valid swap (artist-disjoint) as a second check. Candidates:

- ``head-aug``: today's recipe, the torch linear head on windows with the domain-augmented copies
  (:func:`genre10.run_candidate`'s training code: 15 % of the fitting tracks pick the epoch);
- ``lr-*`` / ``svm-*``: logistic regression / RBF-SVM (class_weight balanced) on standardised
  track pooling of both taggers' embeddings: ``mean`` or ``meanstd`` (mean and std over windows;
  SVM only: the regression on 800 columns was too slow for a 2-core host), ``-aug`` adding the
  loud and dull copies to the fitting side only; hyper-parameters by an inner grouped 3-fold CV
  on the fitting side (log-loss);
- ``lr-mean@win``: the ``lr-mean`` model applied to each window and the window probabilities
  averaged, which is how a linear head behind the backbone answers for a track in genrescope.

Per candidate: out-of-fold track probabilities; per repeat, accuracy, macro-F1, top-3, log-loss
and ECE over the 338 tracks; reported as the mean and standard deviation over repeats (and the
fold-level spread of accuracy), with the paired per-repeat difference to ``head-aug``.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from gtzan_folds import proxy_groups, repeated_folds, scores, stop_set

#: probability floor of the log-loss (a class a fold never saw gets 0)
EPS = 1e-6
LR_C = (0.003, 0.01, 0.03, 0.1, 0.3)
SVM_C = (1.0, 3.0, 10.0, 30.0)
SVM_GAMMA = (0.3, 1.0, 3.0)  # times 1 / n_features


@dataclasses.dataclass
class Windows:
    """Per-window embeddings (both taggers, 400 columns) of every track and variant."""

    tracks: list
    by_variant: dict[str, dict[str, np.ndarray]]

    def pooled(self, variant: str, idx, pooling: str) -> np.ndarray:
        rows = [self.by_variant[variant][self.tracks[i].track_id] for i in idx]
        if pooling == "mean":
            return np.stack([w.mean(axis=0) for w in rows])
        return np.stack([np.concatenate([w.mean(axis=0), w.std(axis=0)]) for w in rows])


def load_all(cache: Path, tracks, variants) -> Windows:
    from genre10 import load_windows

    return Windows(tracks, {v: {t.track_id: load_windows(cache, v, t.track_id, "both-emb") for t in tracks}
                            for v in variants})


def neg_log_loss(est, X, y) -> float:
    """Mean log-probability of the true class (classes the estimator never saw get EPS)."""
    p = est.predict_proba(X)
    col = {c: i for i, c in enumerate(est.classes_)}
    py = np.array([p[i, col[c]] if c in col else 0.0 for i, c in enumerate(y)])
    return float(np.mean(np.log(np.clip(py, EPS, 1.0))))


def full_probs(est, X, n_classes: int) -> np.ndarray:
    """(n, n_classes) probabilities, zero for a class the estimator never saw."""
    out = np.zeros((len(X), n_classes))
    out[:, est.classes_] = est.predict_proba(X)
    return out


def inner_splits(y: np.ndarray, groups: np.ndarray, n_copies: int, seed: int) -> list:
    """Grouped stratified 3-fold splits of the clean fitting rows; the copies (rows ``n`` to
    ``n * n_copies``) join the fitting side of their track only, never the scored side."""
    import warnings

    from sklearn.model_selection import StratifiedGroupKFold

    n = len(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a genre with fewer groups than folds
        base = list(StratifiedGroupKFold(3, shuffle=True, random_state=seed).split(np.zeros(n), y, groups))
    return [(np.concatenate([a + c * n for c in range(n_copies)]), b) for a, b in base]


def fit_sklearn(kind: str, X: np.ndarray, y: np.ndarray, cv: list, seed: int):
    """A standardise + classifier pipeline, hyper-parameters by grid search on ``cv``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if kind == "lr":
        est = LogisticRegression(class_weight="balanced", max_iter=1000)
        grid = {"logisticregression__C": list(LR_C)}
    else:
        est = SVC(kernel="rbf", class_weight="balanced", probability=True, random_state=seed)
        grid = {"svc__C": list(SVM_C), "svc__gamma": [g / X.shape[1] for g in SVM_GAMMA]}
    search = GridSearchCV(make_pipeline(StandardScaler(), est), grid, scoring=neg_log_loss, cv=cv, error_score=-99.0)
    return search.fit(X, y).best_estimator_


#: candidate families: the candidate whose presence marks a fold done, and what they need
FAMILIES = {"sklearn": ("lr-mean", ("clean",)), "sklearn-aug": ("lr-mean-aug", ("clean", "loud", "dull")),
            "head": ("head-aug", ("clean", "loud", "dull"))}


def sklearn_candidates(W: Windows, y: np.ndarray, fit_idx, test_idx, seed: int, n_classes: int,
                       augmented: bool) -> dict:
    """Out-of-fold track probabilities of the lr-* / svm-* candidates on one fold: mean and
    meanstd pooling, or (``augmented``) mean pooling with the loud and dull copies."""
    groups = proxy_groups([W.tracks[i] for i in fit_idx])
    out = {}
    for pooling, aug in ((("mean", True),) if augmented else (("mean", False), ("meanstd", False))):
        variants = ("clean", "loud", "dull") if aug else ("clean",)
        X = np.concatenate([W.pooled(v, fit_idx, pooling) for v in variants])
        yy = np.tile(y[fit_idx], len(variants))
        cv = inner_splits(y[fit_idx], groups, len(variants), seed)
        Xt = W.pooled("clean", test_idx, pooling)
        for kind in ("svm",) if pooling == "meanstd" else ("lr", "svm"):  # lr on 800 columns: too slow here
            est = fit_sklearn(kind, X, yy, cv, seed)
            name = f"{kind}-{pooling}{'-aug' if aug else ''}"
            out[name] = full_probs(est, Xt, n_classes)
            if name == "lr-mean":
                out["lr-mean@win"] = np.stack([full_probs(est, W.by_variant["clean"][W.tracks[i].track_id],
                                                          n_classes).mean(axis=0) for i in test_idx])
    return out


def head_candidate(manifest, W: Windows, fit_idx, test_idx, args, tag: str) -> dict:
    """Today's recipe on one fold: the torch linear head on windows, augmented copies on the
    fitting side, 15 % of the fitting tracks (clean) for early stopping."""
    from genre10 import fold_data, head_config, tempered, test_window_probs, train_config
    from genrescope.datasets import Manifest
    from genrescope.training.train import fit

    fit_t = [W.tracks[i] for i in fit_idx]
    held = stop_set(fit_t, 0.15, args.seed)
    entries = [dataclasses.replace(t, split="valid" if t.track_id in held else "train") for t in fit_t]
    entries += [dataclasses.replace(W.tracks[i], split="test") for i in test_idx]
    data = fold_data(Manifest(list(manifest.labels), entries, []), args.cache, "both-emb", True)
    r = fit("features-mlp", data, args.out / "cv-runs" / tag, cfg=train_config(seed=args.seed),
            feature_config=data.feature_config, model_config=head_config(data, "linear"), progress=False)
    probs = tempered(test_window_probs(r.checkpoint, data), 1.0)
    order = {tid: k for k, tid in enumerate(data.track_ids["test"])}
    return {"head-aug": probs[[order[W.tracks[i].track_id] for i in test_idx]]}


# ---------------------------------------------------------------- scoring
def track_metrics(probs: np.ndarray, y: np.ndarray) -> dict:
    """Accuracy, macro-F1, top-3, log-loss and ECE of (n, G) track probabilities."""
    from genre10 import ece
    from sklearn.metrics import f1_score

    pred = probs.argmax(axis=1)
    top3 = np.argsort(-probs, axis=1)[:, :3]
    return {"accuracy": float(np.mean(pred == y)),
            "macro_f1": float(f1_score(y, pred, labels=range(probs.shape[1]), average="macro", zero_division=0)),
            "top3": float(np.mean([yy in t for yy, t in zip(y, top3)])),
            "log_loss": float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], EPS, 1.0)))),
            "ece": ece(probs, y)[0]}


def summarise(oof: dict, folds: list, y: np.ndarray, baseline: str = "head-aug") -> dict:
    """Per candidate: each metric's mean and sd over repeats, the fold-level sd of accuracy,
    and the paired per-repeat difference to ``baseline`` (mean, sd, repeats won)."""
    repeats = sorted({r for r, *_ in folds})
    per = {}
    for name in sorted({k.split("|")[0] for k in oof}):
        runs, fold_acc = [], []
        for r in repeats:
            probs = np.zeros((len(y), oof[f"{name}|{r}|0"].shape[1]))
            for rr, f, _, test_idx in folds:
                if rr == r:
                    probs[test_idx] = oof[f"{name}|{r}|{f}"]
                    fold_acc.append(float(np.mean(probs[test_idx].argmax(axis=1) == y[test_idx])))
            runs.append(track_metrics(probs, y))
        per[name] = {m: {"mean": float(np.mean([x[m] for x in runs])), "sd": float(np.std([x[m] for x in runs], ddof=1))
                         if len(runs) > 1 else 0.0, "repeats": [x[m] for x in runs]} for m in runs[0]}
        per[name]["fold_accuracy_sd"] = float(np.std(fold_acc, ddof=1))
    if baseline in per:
        for name, s in per.items():
            for m in ("accuracy", "macro_f1", "log_loss"):
                d = np.subtract(s[m]["repeats"], per[baseline][m]["repeats"])
                s[m]["diff"] = {"mean": float(d.mean()), "sd": float(d.std(ddof=1)) if len(d) > 1 else 0.0,
                                "won": int(np.sum(d > 0) if m != "log_loss" else np.sum(d < 0))}
    return per


def ff_summary(oof: dict, idx: dict, y: np.ndarray, n_classes: int) -> dict:
    """FF swap (folds A and B): pooled accuracy / macro-F1 with standard errors, per-fold accuracy."""
    out = {}
    for name in sorted({k.split("|")[0] for k in oof}):
        conf, folds = np.zeros((n_classes, n_classes), int), {}
        for fold in "AB":
            pred = oof[f"{name}|{fold}"].argmax(axis=1)
            c = np.zeros_like(conf)
            np.add.at(c, (y[idx[fold]], pred), 1)
            folds[fold] = float(np.trace(c) / c.sum())
            conf += c
        s = scores(conf)
        out[name] = {k: s[k] for k in ("accuracy", "accuracy_se", "macro_f1", "macro_f1_se")} | {"folds": folds}
    return out


# ---------------------------------------------------------------- run
def fold_jobs(tracks, args) -> tuple[list, list, dict]:
    """(key, fit indices, scored indices) of every repeated fold and of the FF swap."""
    folds = repeated_folds(tracks, args.repeats, args.k, args.block, args.seed)
    split = np.array([t.split for t in tracks])
    ff = {"A": (np.flatnonzero(split == "train"), np.flatnonzero(split == "valid")),
          "B": (np.flatnonzero(split == "valid"), np.flatnonzero(split == "train"))}
    jobs = [(f"{r}|{f}", a, b) for r, f, a, b in folds] + [(k, a, b) for k, (a, b) in ff.items()]
    return jobs, folds, {k: b for k, (a, b) in ff.items()}


def run_cv(args) -> None:
    from gtzan_folds import load_gtzan

    manifest = load_gtzan()
    tracks, classes = list(manifest.entries), list(manifest.labels)
    y = np.array([classes.index(t.label) for t in tracks])
    W = load_all(args.cache, tracks, sorted({v for f in args.families for v in FAMILIES[f][1]}))
    jobs, folds, ff_test = fold_jobs(tracks, args)
    args.out.mkdir(parents=True, exist_ok=True)
    store = args.out / f"cv-oof-{args.repeats}x{args.k}-b{args.block}-s{args.seed}.npz"
    oof = dict(np.load(store)) if store.is_file() else {}  # a rerun resumes
    t0 = time.perf_counter()
    for key, fit_idx, test_idx in jobs:
        for family in args.families:
            if f"{FAMILIES[family][0]}|{key}" in oof:
                continue
            res = (head_candidate(manifest, W, fit_idx, test_idx, args, key.replace("|", "-")) if family == "head"
                   else sklearn_candidates(W, y, fit_idx, test_idx, args.seed, len(classes), family == "sklearn-aug"))
            oof |= {f"{name}|{key}": p for name, p in res.items()}
            np.savez(store, **oof)
            print(f"cv {family} fold {key} ({len(fit_idx)} fit / {len(test_idx)} scored): "
                  f"{time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    names = {k.split("|")[0] for k in oof}
    complete = {n for n in names if all(f"{n}|{key}" in oof for key, _, _ in jobs)}  # others: not summarised
    rep = {k: v for k, v in oof.items() if k.count("|") == 2 and k.split("|")[0] in complete}
    per = summarise(rep, folds, y)
    fold_level_diffs(per, rep, folds, y)
    ffs = ff_summary({k: v for k, v in oof.items() if k.count("|") == 1 and k.split("|")[0] in complete}, ff_test,
                     y, len(classes))
    result = {"protocol": protocol_text(args), "labels": classes, "repeated": per, "ff_swap": ffs,
              "seconds": time.perf_counter() - t0}
    (args.out / "cv.json").write_text(json.dumps(result, indent=1))
    print(cv_markdown(per, ffs))


def protocol_text(args) -> str:
    return (f"{args.repeats} x {args.k} grouped stratified K-fold over the 338 FF train + valid tracks, groups: "
            f"genre and block of {args.block} consecutive track numbers (artist proxy), seed {args.seed}; "
            "plus the FF train/valid swap (artist-disjoint)")


def fold_level_diffs(per: dict, oof: dict, folds: list, y: np.ndarray, baseline: str = "head-aug") -> None:
    """Add each candidate's paired fold-level accuracy difference to ``baseline`` and its
    standard error (the sd of the fold differences over sqrt(k): one repeat's folds are
    disjoint, the repeats reuse the same tracks, so k and not repeats x k is the sample size)."""
    if baseline not in per:
        return
    k = len({f for _, f, _, _ in folds})
    for name in per:
        d = [np.mean(oof[f"{name}|{r}|{f}"].argmax(1) == y[t]) - np.mean(oof[f"{baseline}|{r}|{f}"].argmax(1) == y[t])
             for r, f, _, t in folds]
        per[name]["fold_accuracy_diff"] = {"mean": float(np.mean(d)), "se": float(np.std(d, ddof=1) / np.sqrt(k))}


def cv_markdown(per: dict, ffs: dict) -> str:
    def pm(s, m, d=3):
        return f"{s[m]['mean']:.{d}f} ± {s[m]['sd']:.{d}f}"

    lines = ["| candidate | accuracy (sd repeats; sd folds) | macro-F1 | top-3 | log-loss | ECE | "
             "accuracy - head-aug (fold-paired, ± se) | FF swap accuracy | FF swap macro-F1 |", "|" + "---|" * 9]
    for name, s in sorted(per.items(), key=lambda kv: -kv[1]["macro_f1"]["mean"]):
        d = s.get("fold_accuracy_diff", {"mean": 0.0, "se": 0.0})
        f = ffs.get(name)
        ff = (f"{f['accuracy']:.3f} ± {f['accuracy_se']:.3f} (A {f['folds']['A']:.3f}, B {f['folds']['B']:.3f}) | "
              f"{f['macro_f1']:.3f} ± {f['macro_f1_se']:.3f}") if f else "- | -"
        lines.append(f"| {name} | {pm(s, 'accuracy')}; {s['fold_accuracy_sd']:.3f} | {pm(s, 'macro_f1')} | "
                     f"{pm(s, 'top3')} | {pm(s, 'log_loss')} | {pm(s, 'ece')} | {d['mean']:+.3f} ± {d['se']:.3f} | "
                     f"{ff} |")
    return "\n".join(lines)
