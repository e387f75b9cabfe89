"""Transfer learning on the real music in ../shared/data: a head on musicnn embeddings,
and the same task with the backbone's last blocks fine-tuned end to end.

Task: three styles, split by SOURCE recording (every excerpt of one recording lands on
one side, via the manifest's artist column):
  classical   - GTZAN classical excerpts (classical-15s/*.flac + clips/classical), one track each
  orchestral  - The Battle for Wesnoth soundtrack (free-music/wesnoth), cut into 15 s excerpts
  electronic  - Warzone 2100 soundtrack (free-music/warzone2100), cut into 15 s excerpts
The head is trained on window embeddings of the train split, selected on valid, scored once on
test (track level = excerpt level). Few-shot runs keep only K training recordings per class.
With --finetune N (default 1), each run also trains `genrescope train --backbone B --finetune N`'s
model on log-mel windows (augmented, backbone blocks at a tenth of the head's learning rate) on
the same training excerpts, selected and scored the same way.

    python bench/transfer.py [--backbone musicnn-msd] [--seeds 0 1 2] [--shots 1 2 0] [--finetune 1]
"""
from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
EXCERPT_S = 15.0
MAX_EXCERPTS_PER_SOURCE = 8


def build_manifest(out: Path) -> Path:
    """Write 15 s excerpts and a CSV manifest (artist = source recording)."""
    import soundfile as sf

    from genrescope.audio.decode import audio_info, load_audio

    rows = []
    for f in sorted((SHARED / "gtzan" / "classical-15s").glob("*.flac")) + \
            sorted((SHARED / "gtzan" / "clips" / "classical").glob("*.wav")):
        rows.append((str(f), "classical", f.stem, f.stem))
    for label, folder, pattern in (("orchestral", "wesnoth", "*.ogg"), ("electronic", "warzone2100", "*.opus")):
        for f in sorted((SHARED / "free-music" / folder).glob(pattern)):
            if f.name == "silence.ogg":
                continue
            n = int(audio_info(f).duration_s // EXCERPT_S)
            for k in range(min(n, MAX_EXCERPTS_PER_SOURCE)):
                y = load_audio(f, sr=22050, offset=k * EXCERPT_S, duration=EXCERPT_S)
                dest = out / label / f"{f.stem}_{k:02d}.wav"
                dest.parent.mkdir(parents=True, exist_ok=True)
                sf.write(str(dest), y, 22050)
                rows.append((str(dest), label, f"{f.stem}_{k:02d}", f"{folder}/{f.stem}"))
    manifest = out / "manifest.csv"
    with open(manifest, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "track_id", "artist"])
        w.writerows(rows)
    return manifest


def few_shot(data, shots: int, seed: int, manifest):
    """Keep the training excerpts of only `shots` source recordings per class."""
    from genrescope.training.data import TrainData

    if shots <= 0:
        return data
    artist = {t.track_id: t.artist for t in manifest.entries}
    rng = np.random.default_rng(seed)
    keep = []
    for c in range(data.n_classes):
        sources = sorted({artist[i] for i, y in zip(data.track_ids["train"], data.labels["train"]) if y == c})
        chosen = set(rng.choice(sources, size=min(shots, len(sources)), replace=False))
        keep += [k for k, (i, y) in enumerate(zip(data.track_ids["train"], data.labels["train"]))
                 if y == c and artist[i] in chosen]
    items = dict(data.items, train=[data.items["train"][k] for k in keep])
    labels = dict(data.labels, train=data.labels["train"][keep])
    ids = dict(data.track_ids, train=[data.track_ids["train"][k] for k in keep])
    return TrainData(data.classes, data.kind, data.feature_config, items, labels, ids)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="musicnn-msd")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--shots", type=int, nargs="+", default=[1, 2, 0], help="0 = all training recordings")
    ap.add_argument("--finetune", type=int, nargs="*", default=[1],
                    help="also fine-tune the backbone's last N blocks, for each N given (none: head only)")
    ap.add_argument("--finetune-epochs", type=int, default=10)
    args = ap.parse_args()
    if not SHARED.is_dir():
        print(f"skip: {SHARED} not found")
        return 0
    import torch

    from genrescope.training.data import from_manifest
    from genrescope.datasets import load_dataset
    from genrescope.inference.backbone import Backbone
    from genrescope.training.embed import train_data
    from genrescope.models import default_config, default_features
    from genrescope.training.train import TrainConfig, fit

    torch.set_num_threads(1)
    bb = Backbone(args.backbone)
    results = []
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        manifest_path = build_manifest(d / "excerpts")
        for seed in args.seeds:
            manifest = load_dataset(manifest_path, layout="csv", split="artist", seed=seed)
            full = train_data(manifest, bb, cache_root=d / "cache", jobs=2, progress=False)
            for shots in args.shots:
                data = few_shot(full, shots, seed, manifest)
                mcfg = default_config("features-mlp", feature_config=bb.feature_config, n_classes=data.n_classes,
                                      n_bins=data.n_bins, hidden=(), dropout=0.0)
                cfg = TrainConfig(epochs=40, batch_size=32, lr=1e-2, weight_decay=1e-2, patience=10, seed=seed)
                t0 = time.perf_counter()
                res = fit("features-mlp", data, d / f"run{seed}_{shots}", cfg=cfg, feature_config=bb.feature_config,
                          model_config=mcfg, progress=False)
                record(results, "linear head on embeddings", seed, shots, data, res.test, time.perf_counter() - t0)
            if args.finetune:
                fc = default_features("musicnn-finetune")
                mel = from_manifest(manifest, fc, "log_mel", cache_root=d / "cache", jobs=2, progress=False)
                for n in args.finetune:
                    for shots in args.shots:
                        data = few_shot(mel, shots, seed, manifest)
                        mcfg = default_config("musicnn-finetune", feature_config=fc, n_classes=data.n_classes,
                                              backbone=args.backbone, train_blocks=n, hidden=())
                        cfg = TrainConfig(epochs=args.finetune_epochs, batch_size=32, lr=1e-2, weight_decay=1e-2,
                                          patience=4, seed=seed, windows_per_track=2)
                        t0 = time.perf_counter()
                        res = fit("musicnn-finetune", data, d / f"ft{n}_{seed}_{shots}", cfg=cfg, feature_config=fc,
                                  model_config=mcfg, progress=False)
                        record(results, f"fine-tuned, last {n} block(s)", seed, shots, data, res.test,
                               time.perf_counter() - t0)
        counts = full.split_summary()
    print(f"backbone {args.backbone}; classes {full.classes}; split by source recording")
    print(f"split sizes (last seed): {counts}\n")
    print("| method | training recordings per class | seeds | test excerpts | test accuracy (mean +- sd) | "
          "test macro-F1 | training s (mean) |")
    print("|---|---|---|---|---|---|---|")
    for method in dict.fromkeys(r[0] for r in results):
        for shots in args.shots:
            r = [x for x in results if x[0] == method and x[2] == shots]
            acc, f1 = np.array([x[5] for x in r]), np.array([x[6] for x in r])
            print(f"| {method} | {shots or 'all'} | {len(r)} | {int(np.mean([x[4] for x in r]))} | {acc.mean():.3f} "
                  f"+- {acc.std():.3f} | {f1.mean():.3f} +- {f1.std():.3f} | {np.mean([x[7] for x in r]):.0f} |")
    return 0


def record(results: list, method: str, seed: int, shots: int, data, test: dict, spent: float) -> None:
    results.append((method, seed, shots, len(data.items["train"]), test["tracks"], test["track_accuracy"],
                    test["track_macro_f1"], spent))
    print(f"{method}, seed {seed}, shots {shots or 'all'}: train excerpts {len(data.items['train'])}, test "
          f"{test['tracks']} excerpts, accuracy {test['track_accuracy']:.3f}, macro-F1 {test['track_macro_f1']:.3f} "
          f"({spent:.0f} s)", file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
