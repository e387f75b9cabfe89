"""Seconds per training epoch of every architecture, on CPU (and on CUDA when present).

    python bench/train_speed.py [--tracks 100 --duration 30 --threads 2]

The data are *generated* audio (the four styles of ``bench/learn.py``), ``--tracks``
tracks of ``--duration`` seconds, rendered in memory. Each model gets its own default
feature config (``models.default_features``: 128 log-mel bands, n_fft 2048, hop 512,
3 s windows at 22050 Hz; features-mlp: one 57-column GTZAN table row per track).
Features are computed once per (kind, config), in this process, and timed separately:
an epoch below does not include them.

One epoch is what ``genrescope.training.train.fit`` does for training: every track gives
``--windows-per-track`` random crops (features-mlp: one row per track), augmented
(gain, SpecAugment, mixup, from the loop's own ``_batches``), batches of
``--batch-size``, forward, soft cross-entropy, backward, AdamW step. It leaves out
what fit adds per epoch: the validation pass and the checkpoint writes. One warm-up
epoch, then the median of ``--epochs`` timed epochs. CPU runs use
``torch.set_num_threads(--threads)`` and deterministic algorithms (as fit does on
CPU); on CUDA, fp16 autocast with a GradScaler, as fit does.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

SR = 22050


def generate(n_tracks: int, duration: float, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """``n_tracks`` waveforms cycling through learn.py's styles, and their class indices."""
    from learn import STYLES, render

    styles = list(STYLES)
    waves, labels = [], []
    for i in range(n_tracks):
        c = i % len(styles)
        waves.append(render(styles[c], duration, SR, np.random.default_rng([seed, c, i])))
        labels.append(c)
    return waves, np.array(labels, dtype=np.int64)


def features(waves: list[np.ndarray], fc, kind: str) -> list[np.ndarray]:
    from genrescope.features.spectrogram import compute
    from genrescope.features.gtzan_table import COLUMNS, extract_row

    if kind == "table":
        return [np.array([r[c] for c in COLUMNS], np.float32) for r in (extract_row(w, SR, cfg=fc) for w in waves)]
    return [compute(w, fc, kind) for w in waves]


def time_epochs(name: str, data, args, device) -> list[float]:
    """Wall seconds of 1 + ``args.epochs`` training epochs of ``name`` on ``device``."""
    import torch

    from genrescope.models import build_model, default_config
    from genrescope.training.train import TrainConfig, _batches, train_step

    cfg = TrainConfig(batch_size=args.batch_size, windows_per_track=args.windows_per_track, seed=0)
    mcfg = default_config(name, feature_config=data.feature_config, n_classes=data.n_classes)
    model = build_model(name, mcfg, seed=0)
    if data.kind == "table":
        model.set_standardization(*data.table_stats())
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    weights = torch.from_numpy(data.class_weights()).to(device)
    cuda = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if cuda else None
    out = []
    for epoch in range(1 + args.epochs):
        if cuda:
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        for xb, yb in _batches(data, cfg, epoch):
            train_step(model, opt, scaler, xb, yb, weights, device)
        if cuda:
            torch.cuda.synchronize(device)
        out.append(time.perf_counter() - t0)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from genrescope.models import BUILTIN

    ap.add_argument("--models", default=",".join(BUILTIN))
    ap.add_argument("--tracks", type=int, default=100)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--windows-per-track", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs after one warm-up epoch")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads on CPU")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-cuda", action="store_true", help="skip the CUDA timings even if a GPU is present")
    args = ap.parse_args(argv)

    import torch

    from genrescope.training.data import TrainData
    from genrescope.models import build_model, default_config, default_features, n_params

    torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    devices = [torch.device("cpu")]
    if torch.cuda.is_available() and not args.no_cuda:
        devices.append(torch.device("cuda"))

    t0 = time.perf_counter()
    waves, y = generate(args.tracks, args.duration, args.seed)
    gen_s = time.perf_counter() - t0
    audio_s = args.tracks * args.duration
    classes = ["four-floor", "offbeat", "swing", "ambient"]
    datas, feat_rows = {}, []
    for name in names:
        fc = default_features(name)
        kind = default_config(name, feature_config=fc, n_classes=len(classes)).kind
        key = (kind, fc.key())
        if key not in datas:
            t0 = time.perf_counter()
            items = features(waves, fc, kind)
            sec = time.perf_counter() - t0
            # valid must not be empty for TrainData; it is never used here
            datas[key] = TrainData(classes, kind, fc, {"train": items, "valid": items[:1]},
                                   {"train": y, "valid": y[:1]})
            feat_rows.append((kind, _describe(fc, kind), items[0].shape, sec))
            print(f"features {kind}: {sec:.1f} s", file=sys.stderr, flush=True)

    rows = []
    for name in names:
        fc = default_features(name)
        kind = default_config(name, feature_config=fc, n_classes=len(classes)).kind
        data = datas[(kind, fc.key())]
        params = n_params(build_model(name, default_config(name, feature_config=fc, n_classes=len(classes))))
        windows = data.epoch_size(args.windows_per_track)
        timed = {}
        for dev in devices:
            ts = time_epochs(name, data, args, dev)
            timed[dev.type] = (ts[0], float(np.median(ts[1:])))
            print(f"{name} on {dev.type}: {', '.join(f'{t:.2f}' for t in ts)} s", file=sys.stderr, flush=True)
        rows.append((name, f"{kind} {data.n_bins}", params, windows, timed))

    cpu_name = _cpu_name()
    print(f"## Training speed: {args.tracks} generated tracks of {args.duration:g} s, batch {args.batch_size}, "
          f"{args.windows_per_track} windows/track/epoch\n")
    print(f"CPU: {cpu_name}, torch {torch.__version__}, torch.set_num_threads({args.threads}); "
          f"median of {args.epochs} epoch(s) after 1 warm-up epoch; validation and checkpoint writes not included"
          + ("; CUDA: " + torch.cuda.get_device_name(0) + " (fp16 autocast)" if len(devices) > 1 else
             "; no CUDA device present") + "\n")
    head = "| model | input | params | samples / epoch | CPU s / epoch | CPU samples / s | CPU warm-up epoch s |"
    if len(devices) > 1:
        head += " CUDA s / epoch | CUDA samples / s |"
    print(head)
    print("|" + "---|" * head.count(" |"))
    for name, inp, params, windows, timed in rows:
        warm, med = timed["cpu"]
        line = f"| {name} | {inp} | {params:,} | {windows} | {med:.2f} | {windows / med:.0f} | {warm:.2f} |"
        if "cuda" in timed:
            line += f" {timed['cuda'][1]:.3f} | {windows / timed['cuda'][1]:.0f} |"
        print(line)
    print(f"\nFeature extraction (once, single process, not in the epochs above; {audio_s:g} s of audio, "
          f"generated in {gen_s:.0f} s):\n")
    print("| features | config | shape per track | seconds | x real time |")
    print("|---|---|---|---|---|")
    for kind, desc, shape, sec in feat_rows:
        print(f"| {kind} | {desc} | {tuple(shape)} | {sec:.1f} | {audio_s / sec:.0f} |")
    return 0


def _describe(fc, kind: str) -> str:
    base = f"n_fft {fc.n_fft}, hop {fc.hop_length}"
    return {"log_mel": f"{base}, {fc.n_mels} mels, {fc.log}",
            "mfcc": f"{base}, {fc.n_mfcc} MFCCs of {fc.n_mels} mels",
            "stft": f"{base}, power, {fc.log}",
            "table": f"GTZAN table: {base}, {fc.pad_mode} padding, HPSS, tempo, 20 MFCCs"}[kind]


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
