"""Every from-scratch architecture on real GTZAN audio, one protocol, artist-disjoint folds.

    python bench/gtzan_archs.py [--models a,b] [--epochs 20] [--folds A,B] [--curve mfcc-cnn]

Data: the 338 readable tracks of the fault-filtered (FF) train and valid splits in
``../shared/data/gtzan/audio`` (Opus; skipped with a message when absent). The FF split is
artist-conscious, so FF train and FF valid share no artist; that boundary is the only
artist-disjoint cut this data allows, and both folds use it:

- fold A: fit on FF train, score on FF valid (115 tracks; pop has no valid track);
- fold B: fit on FF valid, score on FF train (223 tracks; hip-hop has 1 and pop 0 training
  tracks in this fold, so both are nearly or entirely unlearnable there).

Inside each fold, 15 % of the fitting tracks (stratified by genre, seeded) are held out for
early stopping only (track macro-F1, ties to the lower log-loss); the scored side is never
seen in training or selection. Reported: track accuracy and macro-F1 per fold, and pooled
over both folds (every track scored exactly once by a model that never saw it), with
standard errors (accuracy: binomial; macro-F1: bootstrap over tracks), per-genre recall and
the pooled confusion matrix. ``--curve MODEL`` adds a learning curve on fold A (training
tracks per genre vs valid accuracy). Results: markdown on stdout, JSON in --out.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes"))
from gtzan_folds import SHARED_AUDIO, fold_manifest, load_gtzan, scores, stop_set  # noqa: E402,F401


def train_one(name: str, manifest, cfg, out: Path, cache: Path, jobs: int) -> dict:
    """Fit one architecture on one fold; the test split's confusion and timings."""
    from genrescope.models import build_model, default_config, default_features, n_params
    from genrescope.training.data import from_manifest
    from genrescope.training.train import fit

    fc = default_features(name)
    mcfg = default_config(name, feature_config=fc, n_classes=len(manifest.labels))
    t0 = time.perf_counter()
    if mcfg.kind == "table":
        from learn import table_data

        data = table_data(manifest, fc, jobs)
    else:
        data = from_manifest(manifest, fc, mcfg.kind, cache_root=cache, jobs=jobs, progress=False)
    feat_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = fit(name, data, out, cfg=cfg, feature_config=fc, model_config=mcfg, progress=False)
    return {"model": name, "params": n_params(build_model(name, mcfg)), "input": f"{data.kind} {data.n_bins}",
            "confusion": np.asarray(res.test["report"].confusion), "best_epoch": res.best_epoch,
            "epochs": len(res.history), "train_s": time.perf_counter() - t0, "features_s": feat_s}


def run_models(names, manifest, args) -> list[dict]:
    import torch

    from genrescope.training.augment import AugmentConfig
    from genrescope.training.train import TrainConfig

    torch.set_num_threads(args.threads)
    rows = []
    for name in names:
        row = {"model": name, "folds": {}}
        for fold in args.folds:
            cfg = TrainConfig(epochs=args.epochs if name != "parallel-cnn-bilstm" else min(args.epochs, args.bilstm_epochs),
                              patience=args.patience, batch_size=32, lr=1e-3, seed=args.seed,
                              windows_per_track=args.windows_per_track, augment=AugmentConfig(), device="cpu")
            r = train_one(name, fold_manifest(manifest, fold, args.seed), cfg, args.out / f"{name}-{fold}",
                          args.cache or args.out / "cache", args.jobs)
            row.update(params=r["params"], input=r["input"])
            row["folds"][fold] = {**scores(r["confusion"]), "best_epoch": r["best_epoch"], "epochs": r["epochs"],
                                  "train_s": r["train_s"], "features_s": r["features_s"]}
            f = row["folds"][fold]
            print(f"{name} fold {fold}: acc {f['accuracy']:.3f} +- {f['accuracy_se']:.3f}, macro-F1 "
                  f"{f['macro_f1']:.3f}, best epoch {r['best_epoch']}/{r['epochs']}, {r['train_s']:.0f} s",
                  file=sys.stderr, flush=True)
        conf = sum(np.asarray(f["confusion"]) for f in row["folds"].values())
        row["pooled"] = scores(conf)
        rows.append(row)
        (args.out / "results.json").write_text(json.dumps({"labels": list(manifest.labels), "rows": rows}, indent=1))
    return rows


def learning_curve(name: str, manifest, args) -> list[dict]:
    """Fold A with at most k training tracks per genre: k vs FF-valid track accuracy."""
    from genrescope.training.augment import AugmentConfig
    from genrescope.training.train import TrainConfig

    out = []
    for k in args.curve_k:
        cfg = TrainConfig(epochs=args.epochs, patience=args.patience, seed=args.seed,
                          windows_per_track=args.windows_per_track, augment=AugmentConfig(), device="cpu")
        m = fold_manifest(manifest, "A", args.seed, per_genre=k)
        r = train_one(name, m, cfg, args.out / f"curve-{name}-{k}", args.cache or args.out / "cache", args.jobs)
        s = scores(r["confusion"])
        n_fit = sum(1 for t in m.entries if t.split in ("train", "valid"))
        out.append({"per_genre": k, "fit_tracks": n_fit, **{x: s[x] for x in ("accuracy", "accuracy_se", "macro_f1",
                                                                              "macro_f1_se")}})
        print(f"curve {name} k={k}: {n_fit} tracks, acc {s['accuracy']:.3f}", file=sys.stderr, flush=True)
    return out


def markdown(rows: list[dict], labels: list[str]) -> str:
    def pm(d, key):
        return f"{d[key]:.3f} ± {d[key + '_se']:.3f}"

    lines = ["| model | input | params | fold A acc (n=115) | fold A macro-F1 | fold B acc (n=223) | fold B macro-F1 | "
             "pooled acc (n=338) | pooled macro-F1 |", "|" + "---|" * 9]
    for r in rows:
        a, b, p = r["folds"].get("A"), r["folds"].get("B"), r["pooled"]
        cells = [pm(a, "accuracy"), pm(a, "macro_f1")] if a else ["-", "-"]
        cells += [pm(b, "accuracy"), pm(b, "macro_f1")] if b else ["-", "-"]
        lines.append(f"| {r['model']} | {r['input']} | {r['params']:,} | " + " | ".join(cells) +
                     f" | {pm(p, 'accuracy')} | {pm(p, 'macro_f1')} |")
    lines += ["", "Pooled per-genre recall:", "",
              "| model | " + " | ".join(labels) + " |", "|" + "---|" * (len(labels) + 1)]
    for r in rows:
        rec = r["pooled"]["recall"]
        lines.append(f"| {r['model']} | " + " | ".join("-" if x is None else f"{x:.2f}" for x in rec) + " |")
    return "\n".join(lines)


def curve_markdown(name: str, curve: list[dict]) -> str:
    lines = [f"Learning curve, {name}, fold A (scored on FF valid):", "",
             "| training tracks per genre (at most) | fitting tracks | valid acc | valid macro-F1 |", "|---|---|---|---|"]
    lines += [f"| {c['per_genre']} | {c['fit_tracks']} | {c['accuracy']:.3f} ± {c['accuracy_se']:.3f} | "
              f"{c['macro_f1']:.3f} ± {c['macro_f1_se']:.3f} |" for c in curve]
    return "\n".join(lines)


def report(dirs: list[Path]) -> int:
    """The tables of several runs (e.g. models split over two processes), merged."""
    rows, labels = [], None
    for d in dirs:
        if (d / "results.json").is_file():
            res = json.loads((d / "results.json").read_text())
            labels = res["labels"]
            rows += [r for r in res["rows"] if r["model"] not in {x["model"] for x in rows}]
    from genrescope.models import BUILTIN

    rows.sort(key=lambda r: BUILTIN.index(r["model"]) if r["model"] in BUILTIN else 99)
    if rows:
        print(markdown(rows, labels) + "\n")
    for d in dirs:
        for f in sorted(d.glob("curve-*.json")):
            print(curve_markdown(f.stem[len("curve-"):], json.loads(f.read_text())) + "\n")
    return 0


def parse_args(argv=None):
    from genrescope.models import BUILTIN

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(BUILTIN))
    ap.add_argument("--folds", default="A,B", type=lambda v: v.split(","))
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--bilstm-epochs", type=int, default=10, help="cap for parallel-cnn-bilstm (30x the cost)")
    ap.add_argument("--patience", type=int, default=6)
    ap.add_argument("--windows-per-track", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--curve", default="", help="model for a learning curve on fold A")
    ap.add_argument("--curve-k", default="3,6,12,24,48", type=lambda v: [int(x) for x in v.split(",")])
    ap.add_argument("--out", type=Path, default=Path("runs/gtzan-archs"))
    ap.add_argument("--cache", type=Path, default=None, help="feature cache (default: OUT/cache)")
    ap.add_argument("--report", type=Path, nargs="+", default=None,
                    help="print the tables of earlier runs' OUT folders (results.json, curve-*.json) and stop")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.report:
        return report(args.report)
    if not SHARED_AUDIO.is_dir():
        print(f"{SHARED_AUDIO} is not present; nothing to do")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    manifest = load_gtzan()
    names = [n for n in args.models.split(",") if n]
    rows = run_models(names, manifest, args) if names else []
    print(f"## From-scratch architectures on real GTZAN ({time.perf_counter() - t0:.0f} s)\n")
    print(f"protocol: epochs {args.epochs} (bilstm {args.bilstm_epochs}), patience {args.patience}, "
          f"{args.windows_per_track} windows/track/epoch, augmentation on, seed {args.seed}, torch threads {args.threads}\n")
    if rows:
        print(markdown(rows, list(manifest.labels)) + "\n")
    if args.curve:
        curve = learning_curve(args.curve, manifest, args)
        (args.out / f"curve-{args.curve}.json").write_text(json.dumps(curve, indent=1))
        print(curve_markdown(args.curve, curve))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
