"""The ten-genre model on the musicnn backbone: extract, select, calibrate, ship.

    python recipes/genre10.py extract      # window outputs of both taggers, clean + domain-augmented
    python recipes/genre10.py cv           # every candidate on repeated grouped folds (genre10_cv.py)
    python recipes/genre10.py ship-linear  # refit the logistic-regression head -> pretrained/genre10
    python recipes/genre10.py select       # the torch heads on the 2-fold FF swap alone (the old protocol)
    python recipes/genre10.py ship         # refit the chosen torch head on train+valid -> pretrained/genre10

Data: the 338 readable tracks of GTZAN's fault-filtered train and valid splits in
``../shared/data/gtzan/audio`` (FF test is held back and never touched). ``cv`` and
``ship-linear`` are described in ``genre10_cv.py`` and ``genre10_linear.py``. Folds of ``select``
(``gtzan_folds.py``): A fits on FF train and scores FF valid; B fits on FF valid and
scores FF train (artist-disjoint by construction of the FF split). Inside a fold, 15 % of the
fitting tracks (stratified) pick the epoch; the scored side is never seen.

``extract`` decodes every track at the taggers' 16 kHz, computes their log-mel windows
(the package's one feature path) and stores, per window, both taggers' 200-d embeddings and 50
tag probabilities, for the clean audio and for each recipe of
:mod:`genrescope.training.domain` ("loud": gain into a limiter, EQ tilt, mp3; "dull": band
limit, quiet, EQ, mp3), drawn per track from a seeded generator. Augmented copies are only
ever added to the fitting side.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gtzan_folds import SHARED_AUDIO, fold_manifest, load_gtzan, scores, stop_set  # noqa: E402

VARIANTS = ("clean", "loud", "dull")
TAGGERS = ("musicnn-msd", "musicnn-mtt")
#: feature sets: name -> (backbone, blocks), as a head behind it reads them (inference/backbone.py)
FEATURE_SETS = {
    "msd-emb": ("musicnn-msd", ("embeddings",)),
    "mtt-emb": ("musicnn-mtt", ("embeddings",)),
    "both-emb": ("musicnn", ("embeddings",)),
    "both-tags": ("musicnn", ("probabilities",)),
    "both-emb+tags": ("musicnn", ("embeddings", "probabilities")),
}
#: cache key prefix of each backbone output
CACHED = {"embeddings": "emb", "probabilities": "tags"}


# ---------------------------------------------------------------- extract
def extract_track(path: str, variant: str, seed: int, backbones: list) -> dict[str, np.ndarray]:
    """Per-window embeddings and tag probabilities of each tagger (a one-tagger
    :class:`~genrescope.inference.backbone.Backbone`) for one track and variant."""
    from genrescope.audio.decode import load_audio
    from genrescope.features.spectrogram import compute
    from genrescope.features.windows import slice_windows
    from genrescope.training import domain

    first = backbones[0]
    cfg = first.feature_config
    y = load_audio(path, sr=cfg.sr)
    if variant != "clean":
        rng = np.random.default_rng([seed, zlib.crc32(Path(path).name.encode()), VARIANTS.index(variant)])
        y = domain.apply(y, cfg.sr, domain.draw(variant, rng))
    windows, start, _ = slice_windows(compute(y, cfg, "log_mel"), cfg, win_frames=first.window_frames)
    out = {"start_s": start.astype(np.float32)}
    for b in backbones:
        out[f"emb-{b.name}"], out[f"tags-{b.name}"] = b.run_windows(windows)
    return out


def run_extract(args) -> None:
    from genrescope.inference.backbone import Backbone

    backbones = [Backbone(n, threads=1) for n in TAGGERS]
    manifest = load_gtzan()
    t0 = time.perf_counter()
    for variant in args.variants:
        dest = args.cache / variant
        dest.mkdir(parents=True, exist_ok=True)
        for i, t in enumerate(manifest.entries):
            f = dest / f"{t.track_id}.npz"
            if f.is_file():
                continue
            np.savez(f, **extract_track(t.path, variant, args.seed, backbones))
            if i % 50 == 0:
                print(f"{variant} {i}/{len(manifest.entries)} {time.perf_counter() - t0:.0f} s", file=sys.stderr,
                      flush=True)
    print(f"extract: {len(manifest.entries)} tracks x {len(args.variants)} variants, "
          f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)


def load_windows(cache: Path, variant: str, track_id: str, features: str) -> np.ndarray:
    """(n_windows, D) rows of one track for a feature set, in the order the backbone builds them
    (each member's blocks in turn: :meth:`genrescope.inference.backbone.Backbone.run_windows`)."""
    from genrescope.inference.registry import ENSEMBLES

    backbone, blocks = FEATURE_SETS[features]
    z = np.load(cache / variant / f"{track_id}.npz")
    return np.concatenate([z[f"{CACHED[b]}-{m}"] for m in ENSEMBLES.get(backbone, (backbone,)) for b in blocks], axis=1)


# ---------------------------------------------------------------- select
HEADS = {"linear": {"hidden": (), "dropout": 0.0}, "mlp": {"hidden": (256,), "dropout": 0.3}}


def fold_data(manifest, cache: Path, features: str, augmented: bool):
    """TrainData of window rows; augmented variants are added to the fitting tracks only."""
    from genrescope.config import MUSICNN_FEATURES
    from genrescope.training.data import SPLITS, TrainData

    classes = list(manifest.labels)
    items, labels, ids = {s: [] for s in SPLITS}, {s: [] for s in SPLITS}, {s: [] for s in SPLITS}
    for t in manifest.entries:
        rows = [load_windows(cache, "clean", t.track_id, features)]
        if augmented and t.split == "train":
            rows += [load_windows(cache, v, t.track_id, features) for v in VARIANTS[1:]]
        items[t.split].append(np.concatenate(rows))
        labels[t.split].append(classes.index(t.label))
        ids[t.split].append(t.track_id)
    return TrainData(classes, "table", MUSICNN_FEATURES, items,
                     {s: np.array(v, dtype=np.int64) for s, v in labels.items()}, ids)


def train_config(epochs: int = 30, select_best: bool = True, seed: int = 0):
    from genrescope.training.augment import AugmentConfig
    from genrescope.training.train import TrainConfig

    return TrainConfig(epochs=epochs, patience=8, batch_size=64, lr=3e-3, weight_decay=1e-2, seed=seed,
                       windows_per_track=8, augment=AugmentConfig.off(), device="cpu", select_best=select_best)


def head_config(data, head: str):
    import dataclasses

    from genrescope.models import default_config

    base = default_config("features-mlp", feature_config=data.feature_config, n_classes=data.n_classes)
    return dataclasses.replace(base, n_bins=data.n_bins, **HEADS[head])


def test_window_probs(ckpt: Path, data) -> list[np.ndarray]:
    """Window probabilities of every test track from a saved head."""
    import torch

    from genrescope.models.checkpoint import load_checkpoint
    from genrescope.training.train import predict_tracks

    model, _ = load_checkpoint(ckpt)
    probs, _ = predict_tracks(model, data, "test", torch.device("cpu"))
    return probs


def tempered(window_probs: list[np.ndarray], T: float) -> np.ndarray:
    """(n_tracks, G) track probabilities when the window logits are divided by T."""
    out = []
    for p in window_probs:
        z = np.log(np.maximum(p, 1e-12)) / T
        z = np.exp(z - z.max(axis=1, keepdims=True))
        out.append((z / z.sum(axis=1, keepdims=True)).mean(axis=0))
    return np.array(out)


def ece(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> tuple[float, list[dict]]:
    """Expected calibration error of the top class, and the reliability curve's bins."""
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    edges = np.linspace(0, 1, bins + 1)
    total, curve = 0.0, []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            acc, c = float(np.mean(pred[m] == y[m])), float(conf[m].mean())
            total += m.mean() * abs(acc - c)
            curve.append({"bin": f"{lo:.1f}-{hi:.1f}", "n": int(m.sum()), "confidence": c, "accuracy": acc})
    return float(total), curve


def fit_temperature(window_probs, y) -> float:
    """The T that minimises the track log-loss (grid, 0.5-5)."""
    grid = np.exp(np.linspace(np.log(0.5), np.log(5.0), 60))
    nll = [-np.mean(np.log(np.maximum(tempered(window_probs, T)[np.arange(len(y)), y], 1e-12))) for T in grid]
    return float(grid[int(np.argmin(nll))])


def run_candidate(manifest, args, fs: str, head: str, aug: bool) -> dict:
    """Both folds of one candidate: scores, out-of-fold probabilities, calibration."""
    from genrescope.training.train import fit

    res = {"features": fs, "head": head, "augmented": aug, "folds": {}}
    oof = {}
    for fold in ("A", "B"):
        data = fold_data(fold_manifest(manifest, fold, args.seed), args.cache, fs, aug)
        out = args.out / f"{fs}-{head}-{'aug' if aug else 'clean'}-{fold}"
        r = fit("features-mlp", data, out, cfg=train_config(seed=args.seed), feature_config=data.feature_config,
                model_config=head_config(data, head), progress=False)
        wp = test_window_probs(r.checkpoint, data)
        y = data.labels_of("test")
        oof[fold] = (wp, y)
        conf = np.zeros((data.n_classes, data.n_classes), int)
        np.add.at(conf, (y, tempered(wp, 1.0).argmax(axis=1)), 1)
        res["folds"][fold] = {**scores(conf), "best_epoch": r.best_epoch}
    # temperature fitted on one fold's predictions, judged on the other's
    ece_raw, ece_cal, temps = [], [], {}
    for fold, other in (("A", "B"), ("B", "A")):
        T = fit_temperature(*oof[other])
        temps[fold] = T
        wp, y = oof[fold]
        ece_raw.append(ece(tempered(wp, 1.0), y)[0])
        ece_cal.append(ece(tempered(wp, T), y)[0])
    conf = sum(np.asarray(f["confusion"]) for f in res["folds"].values())
    res["pooled"] = scores(conf)
    res["ece"] = {"raw": float(np.mean(ece_raw)), "tempered": float(np.mean(ece_cal)), "T_from_other_fold": temps}
    allp = np.concatenate([tempered(oof[f][0], 1.0) for f in "AB"])
    ally = np.concatenate([oof[f][1] for f in "AB"])
    res["reliability"] = ece(allp, ally)[1]
    res["top3"] = float(np.mean([yy in np.argsort(-pp)[:3] for pp, yy in zip(allp, ally)]))
    res["criterion"] = float(np.mean([res["folds"][f]["macro_f1"] for f in "AB"]))
    return res


def run_select(args) -> None:
    manifest = load_gtzan()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    done = args.out / "select.json"
    rows = json.loads(done.read_text())["rows"] if done.is_file() else []  # earlier candidates are kept
    for fs in args.features:
        for head in args.heads:
            for aug in args.aug:
                rows = [r for r in rows if (r["features"], r["head"], r["augmented"]) != (fs, head, aug)]
                r = run_candidate(manifest, args, fs, head, aug)
                rows.append(r)
                a, b = r["folds"]["A"], r["folds"]["B"]
                print(f"{fs:14s} {head:6s} {'aug' if aug else 'clean':5s}  A acc {a['accuracy']:.3f} F1 "
                      f"{a['macro_f1']:.3f} | B acc {b['accuracy']:.3f} F1 {b['macro_f1']:.3f} | pooled "
                      f"{r['pooled']['accuracy']:.3f} top3 {r['top3']:.3f} | ECE {r['ece']['raw']:.3f} -> "
                      f"{r['ece']['tempered']:.3f}  ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
                (args.out / "select.json").write_text(json.dumps({"labels": list(manifest.labels), "rows": rows},
                                                                 indent=1))
    best = max(rows, key=lambda r: r["criterion"])
    print(select_markdown(rows, best, list(manifest.labels)))
    print(f"\nselect: {len(rows)} candidates x 2 folds, {time.perf_counter() - t0:.0f} s")


def select_markdown(rows: list[dict], best: dict, labels: list[str]) -> str:
    def pm(d, k):
        return f"{d[k]:.3f} ± {d[k + '_se']:.3f}"

    lines = ["| features | head | domain aug | fold A acc | fold A macro-F1 | fold B acc | fold B macro-F1 | "
             "pooled acc | pooled top-3 | ECE raw / tempered |", "|" + "---|" * 10]
    for r in rows:
        a, b = r["folds"]["A"], r["folds"]["B"]
        mark = " **(chosen)**" if r is best else ""
        lines.append(f"| {r['features']}{mark} | {r['head']} | {'yes' if r['augmented'] else 'no'} | "
                     f"{pm(a, 'accuracy')} | {pm(a, 'macro_f1')} | {pm(b, 'accuracy')} | {pm(b, 'macro_f1')} | "
                     f"{pm(r['pooled'], 'accuracy')} | {r['top3']:.3f} | {r['ece']['raw']:.3f} / "
                     f"{r['ece']['tempered']:.3f} |")
    rec = best["pooled"]["recall"]
    lines += ["", "Chosen head, pooled per-genre recall (every track scored by the fold that never saw it):", "",
              "| " + " | ".join(labels) + " |", "|" + "---|" * len(labels),
              "| " + " | ".join("-" if x is None else f"{x:.2f}" for x in rec) + " |", "",
              "Pooled confusion matrix (rows: true genre, columns: predicted, order as above):", ""]
    lines += ["    " + " ".join(f"{v:3d}" for v in row) for row in best["pooled"]["confusion"]]
    lines += ["", f"Chosen head, reliability of the top genre (out-of-fold, ECE {best['ece']['raw']:.3f}):", "",
              "| confidence | tracks | mean confidence | accuracy |", "|---|---|---|---|"]
    lines += [f"| {b['bin']} | {b['n']} | {b['confidence']:.2f} | {b['accuracy']:.2f} |" for b in best["reliability"]]
    return "\n".join(lines)


# ---------------------------------------------------------------- ship
PRETRAINED = Path(__file__).resolve().parents[1] / "src" / "genrescope" / "pretrained"


def all_tracks_manifest(manifest, seed: int):
    """Every FF train + valid track for fitting; 15 % of them (clean copies) only for logging."""
    import dataclasses

    from genrescope.datasets import Manifest

    held = stop_set(manifest.entries, 0.15, seed)
    entries = [dataclasses.replace(t, split="train") for t in manifest.entries]
    entries += [dataclasses.replace(t, split="valid") for t in manifest.entries if t.track_id in held]
    return Manifest(list(manifest.labels), entries, [])


def scale_logits(model, T: float) -> None:
    """Divide the output logits by T (temperature scaling) inside the final linear layer."""
    import torch

    last = [m for m in model.head.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight /= T
        last.bias /= T


def write_genre10(model, feature_config, labels: list[str], prov: dict) -> Path:
    """Write a features-mlp head behind the backbone as ``pretrained/genre10``: checkpoint,
    ONNX export and config.json (provenance ``prov``: backbone, blocks, dataset, command, selection)."""
    from genrescope.inference.registry import ENSEMBLES
    from genrescope.models.checkpoint import save_checkpoint
    from genrescope.training.fused_export import export_fused

    dest = PRETRAINED / "genre10"
    dest.mkdir(parents=True, exist_ok=True)
    save_checkpoint(dest / "checkpoint.safetensors", model, model_name="features-mlp",
                    feature_config=feature_config, labels=labels, extra=prov,
                    dataset=prov["dataset"], metrics=prov["selection"], command=prov["command"])
    export_fused(dest / "model.onnx", prov["backbone"], head_checkpoint=dest / "checkpoint.safetensors",
                 model_name="genre10", provenance=prov)  # one graph: both taggers and the head
    members = " + ".join(ENSEMBLES.get(prov["backbone"], (prov["backbone"],)))
    config = {"name": "genre10", "architecture": f"features-mlp head on {members}",
              "description": "the ten GTZAN genres as one distribution, from a head on both musicnn taggers",
              "labels": labels, "backbone": prov["backbone"], "backbone_blocks": prov["backbone_blocks"],
              "selection": prov["selection"], "dataset": prov["dataset"], "command": prov["command"],
              "licence": "MIT (the head); backbone weights ISC, see LICENSE-musicnn.txt",
              "source": {"description": "trained by genrescope on GTZAN (Tzanetakis & Cook 2002), FF split of "
                                        "Kereliuk, Sturm & Larsen 2015"}}
    if "note" in prov:
        config["note"] = prov["note"]
    (dest / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return dest


def run_fuse(args) -> None:
    """Export the shipped genre10 again as one graph from its checkpoint (its provenance kept):
    for a change of the export that leaves the numbers alone."""
    from genrescope.inference.onnx_model import OnnxModel
    from genrescope.training.fused_export import export_fused

    dest = PRETRAINED / "genre10"
    prov = OnnxModel(dest / "model.onnx").provenance
    prov.pop("fused", None)
    export_fused(dest / "model.onnx", "musicnn", head_checkpoint=dest / "checkpoint.safetensors", model_name="genre10",
                 provenance=prov)
    print(f"{dest / 'model.onnx'}: both musicnn taggers and the head as one graph")


def run_ship(args) -> None:
    import shutil

    from genrescope.models.checkpoint import load_checkpoint
    from genrescope.training.train import fit

    sel = json.loads((args.out / "select.json").read_text())
    best = max(sel["rows"], key=lambda r: r["criterion"])
    backbone, blocks = FEATURE_SETS[best["features"]]
    epochs = max(1, int(round(np.median([f["best_epoch"] for f in best["folds"].values()]))))
    # temperature scaling only where it helped on held-out folds (fitted on one fold, judged on the other)
    T = float(np.exp(np.mean(np.log(list(best["ece"]["T_from_other_fold"].values())))))
    if best["ece"]["tempered"] >= best["ece"]["raw"]:
        T = 1.0
    manifest = load_gtzan()
    data = fold_data(all_tracks_manifest(manifest, args.seed), args.cache, best["features"], best["augmented"])
    prov = {"backbone": backbone, "backbone_blocks": list(blocks),
            "dataset": {"name": "GTZAN, fault-filtered train + valid (338 tracks; FF test never seen)",
                        "root": "../shared/data/gtzan/audio", "augmentation": list(VARIANTS) if best["augmented"]
                        else ["clean"]},
            "command": "python recipes/genre10.py select && python recipes/genre10.py ship",
            "selection": {"protocol": "2-fold artist-disjoint swap (fit FF train / score FF valid, and back)",
                          "chosen": {k: best[k] for k in ("features", "head", "augmented")},
                          "fold_A": {k: best["folds"]["A"][k] for k in ("accuracy", "accuracy_se", "macro_f1", "macro_f1_se", "n")},
                          "fold_B": {k: best["folds"]["B"][k] for k in ("accuracy", "accuracy_se", "macro_f1", "macro_f1_se", "n")},
                          "pooled": {k: best["pooled"][k] for k in ("accuracy", "accuracy_se", "macro_f1", "macro_f1_se", "n")},
                          "top3": best["top3"], "ece": best["ece"], "epochs": epochs, "temperature": T},
            "note": "refit on all 338 tracks for the folds' median best epoch; logits divided by the temperature "
                    "fitted on out-of-fold predictions (1.0 when that did not lower the held-out ECE)"}
    run = args.out / "ship"
    r = fit("features-mlp", data, run, cfg=train_config(epochs=epochs, select_best=False, seed=args.seed),
            feature_config=data.feature_config, model_config=head_config(data, best["head"]), provenance=prov,
            progress=False)
    model, info = load_checkpoint(r.checkpoint)
    scale_logits(model, T)
    write_genre10(model, data.feature_config, list(data.classes), prov)
    shutil.copyfile(args.out / "select.json", args.out / "select-shipped.json")
    print(f"shipped genre10 -> {PRETRAINED / 'genre10'}: {best['features']} / {best['head']} / aug {best['augmented']}, "
          f"{epochs} epochs, T {T:.2f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=("extract", "select", "ship", "cv", "ship-linear", "fuse"))
    ap.add_argument("--cache", type=Path, default=Path("runs/genre10-cache"))
    ap.add_argument("--variants", default=",".join(VARIANTS), type=lambda v: v.split(","))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("runs/genre10"))
    ap.add_argument("--features", default=",".join(FEATURE_SETS), type=lambda v: v.split(","))
    ap.add_argument("--heads", default=",".join(HEADS), type=lambda v: v.split(","))
    ap.add_argument("--aug", default="no,yes", type=lambda v: [x == "yes" for x in v.split(",")],
                    help="select: candidates without / with the domain-augmented copies")
    ap.add_argument("--repeats", type=int, default=2, help="cv: repeats of the grouped K-fold")
    ap.add_argument("--k", type=int, default=5, help="cv: folds per repeat")
    ap.add_argument("--block", type=int, default=10, help="cv: consecutive track numbers per artist-proxy group")
    ap.add_argument("--families", default="sklearn,sklearn-aug,head", type=lambda v: v.split(","),
                    help="cv: candidate families to run (sklearn: lr-* and svm-*; sklearn-aug: the same on "
                         "clean + augmented copies; head: today's torch head)")
    args = ap.parse_args(argv)
    if not SHARED_AUDIO.is_dir():
        print(f"{SHARED_AUDIO} is not present; nothing to do")
        return 0
    from genre10_cv import run_cv
    from genre10_linear import run_ship_linear

    stages = {"extract": run_extract, "select": run_select, "ship": run_ship, "cv": run_cv, "ship-linear": run_ship_linear,
              "fuse": run_fuse}
    stages[args.stage](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
