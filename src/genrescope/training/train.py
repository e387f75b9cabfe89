"""The training loop: loss, optimiser, schedule, early stopping, checkpoints, resume.

Plain and readable on purpose. One epoch = every training track contributes
``windows_per_track`` windows (random crops when augmentation is on); the epoch's plan
and every augmentation parameter come from ``numpy.random.default_rng([seed, epoch])``,
so a run is reproducible on CPU and a resumed run equals an uninterrupted one.

Under ``torchrun --nproc_per_node=N`` every process builds the same epoch plan, pads it
to a multiple of N by repeating its first samples and takes every N-th sample, so every
rank runs the same number of batches (a distributed sampler with padding); gradients are averaged by DistributedDataParallel (gloo on CPU,
nccl on GPU). Only rank 0 validates, logs and writes files.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as nnf

from genrescope.training import augment
from genrescope.config import FeatureConfig
from genrescope.training.data import TrainData
from genrescope.errors import GenrescopeError
from genrescope.training.distributed import Dist, agree, init_distributed, leave_group, pick_device
from genrescope.training.validate import evaluate_split, predict_tracks

__all__ = ["BALANCE", "Dist", "TrainConfig", "TrainResult", "evaluate_split", "fit", "lr_factor", "pick_device",
           "predict_tracks", "steps_per_epoch", "train_step"]

log = logging.getLogger(__name__)

BALANCE = ("weights", "sampler", "none")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of the loop (the model's own live in its ModelConfig)."""

    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-2
    warmup_epochs: int = 1
    patience: int = 8
    seed: int = 0
    balance: str = "weights"
    windows_per_track: int = 4
    aggregate: str = "mean"
    augment: augment.AugmentConfig = field(default_factory=augment.AugmentConfig)
    device: str = "auto"
    #: False for a refit with a fixed epoch count: every epoch replaces "best", nothing is selected.
    select_best: bool = True

    def __post_init__(self) -> None:
        if self.balance not in BALANCE:
            raise GenrescopeError(f"balance must be one of {BALANCE}, got {self.balance!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise GenrescopeError("epochs, batch_size and lr must be positive")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------- schedule
def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up then cosine decay to 5% of the peak."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


# ---------------------------------------------------------------- one epoch
def shard_size(n: int, world: int) -> int:
    """Samples each rank trains on per epoch: ``ceil(n / world)`` (the epoch is padded)."""
    return -(-n // world)


def steps_per_epoch(n: int, batch_size: int, world: int = 1) -> int:
    """Optimiser steps per epoch; the same on every rank."""
    return max(1, -(-shard_size(n, world) // batch_size))


def _batches(data: TrainData, cfg: TrainConfig, epoch: int, dist: "Dist | None" = None
             ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """This rank's (x, y) batches of the epoch, augmented.

    Every rank draws the same epoch plan, pads its order to a multiple of the world size by
    repeating its first samples (as ``torch.utils.data.DistributedSampler`` does) and takes
    every ``world``-th sample from its rank on, so every rank gets exactly
    :func:`steps_per_epoch` batches: unequal counts leave one rank in a collective that the
    other never enters (gloo aborts on that).
    """
    dist = dist or Dist()
    rng = np.random.default_rng([cfg.seed, epoch])
    x, y = data.epoch_samples(rng, windows_per_track=cfg.windows_per_track, crop=cfg.augment.crop,
                              balanced=cfg.balance == "sampler")
    order = rng.permutation(len(x))
    if dist.world > 1:
        order = np.resize(order, shard_size(len(order), dist.world) * dist.world)[dist.rank::dist.world]
    for i in range(0, len(order), cfg.batch_size):
        idx = order[i:i + cfg.batch_size]
        xb = x[idx]
        yb = np.eye(data.n_classes, dtype=np.float32)[y[idx]]
        if data.kind != "table":
            d = augment.draw(rng, cfg.augment, len(idx), xb.shape[1], xb.shape[2])
            xb, yb = augment.apply(xb, yb, d, db_features=data.db_features)
        yield xb, yb


# ---------------------------------------------------------------- the loop
@dataclass
class TrainResult:
    checkpoint: Path
    best_epoch: int
    history: list[dict]
    valid: dict
    test: dict | None


@dataclass
class _Run:
    """Everything one training run holds: the model (and its DDP wrapper), optimiser, schedule."""

    model: torch.nn.Module
    net: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    scaler: "torch.amp.GradScaler | None"
    weights: torch.Tensor | None
    device: torch.device
    dist: Dist


def _build_run(model_name: str, data: TrainData, cfg: TrainConfig, feature_config: FeatureConfig,
               model_config, device: torch.device, dist: Dist) -> _Run:
    from genrescope.models import build_model, default_config

    torch.manual_seed(cfg.seed)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    if model_config is None:
        model_config = default_config(model_name, feature_config=feature_config, n_classes=data.n_classes)
    model = build_model(model_name, model_config, seed=cfg.seed)
    if data.kind == "table" and hasattr(model, "set_standardization"):
        model.set_standardization(*data.table_stats())
    model.to(device)
    net = model
    if dist.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    # a model may ask for its own groups (a fine-tuned backbone learns slower than its head)
    params = model.param_groups(cfg.lr) if hasattr(model, "param_groups") else model.parameters()
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    per_epoch = steps_per_epoch(data.epoch_size(cfg.windows_per_track), cfg.batch_size, dist.world)
    total = cfg.epochs * per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total, cfg.warmup_epochs * per_epoch))
    weights = torch.from_numpy(data.class_weights()).to(device) if cfg.balance == "weights" else None
    scaler = torch.amp.GradScaler("cuda") if device.type == "cuda" else None
    return _Run(model, net, opt, sched, scaler, weights, device, dist)


def fit(model_name: str, data: TrainData, out_dir: str | os.PathLike, *, cfg: TrainConfig,
        feature_config: FeatureConfig, model_config=None, resume: bool = False,
        provenance: dict | None = None, progress: bool = True,
        on_epoch: Callable[[dict], None] | None = None) -> TrainResult | None:
    """Train ``model_name`` on ``data`` and write checkpoints, ONNX and logs to ``out_dir``.

    Returns the result on rank 0 (None on other ranks). Selection is on the validation
    split (track-level macro-F1); the test split, if any, is scored once with the
    selected weights and never used for any decision.
    """
    out = Path(out_dir)
    device = pick_device(cfg.device)
    dist, owns_group = init_distributed(device)
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
    run = _build_run(model_name, data, cfg, feature_config, model_config, device, dist)
    state = _initial_state(out, run, resume)
    meta = {"model_name": model_name, "labels": data.classes, "feature_config": feature_config,
            "train_config": cfg.to_dict(), "split": data.split_summary(), **(provenance or {})}
    for epoch in range(state["epoch"], cfg.epochs):
        t0 = time.perf_counter()
        losses = _train_epoch(run, data, cfg, epoch, progress)
        stop = False
        if dist.main:
            row, stop = _end_epoch(run, data, cfg, out, state, meta, epoch, losses, time.perf_counter() - t0)
            if on_epoch:
                on_epoch(row)
        if agree(stop, run):
            if dist.main:
                log.info("early stop: no improvement for %d epochs", cfg.patience)
            break
    if dist.world > 1:
        leave_group(run, owns_group)
    if not dist.main:
        return None
    return _finish(out, data, device, cfg, meta)


def _initial_state(out: Path, run: _Run, resume: bool) -> dict:
    from genrescope.models import checkpoint as ckpt

    state = {"epoch": 0, "best": -1.0, "best_nll": math.inf, "best_epoch": -1, "bad_epochs": 0, "history": []}
    if not resume:
        return state
    state_path = out / "training_state.pt"
    if not state_path.exists():
        raise GenrescopeError(f"{state_path}: nothing to resume (no training state in {out})")
    state = ckpt.load_training_state(state_path, model=run.model, optimizer=run.opt, scheduler=run.sched,
                                     scaler=run.scaler)
    log.info("resuming at epoch %d", state["epoch"])
    return state


def _train_epoch(run: _Run, data: TrainData, cfg: TrainConfig, epoch: int, progress: bool) -> list[float]:
    """One pass over this rank's batches; returns the batch losses."""
    run.net.train()
    losses: list[float] = []
    batches = _batches(data, cfg, epoch, run.dist)
    n = steps_per_epoch(data.epoch_size(cfg.windows_per_track), cfg.batch_size, run.dist.world)
    bar = _progress(batches, f"epoch {epoch + 1}/{cfg.epochs}", progress and run.dist.main, total=n)
    for xb, yb in bar:
        losses.append(train_step(run.net, run.opt, run.scaler, xb, yb, run.weights, run.device))
        run.sched.step()
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{np.mean(losses):.3f}")
    return losses


def _end_epoch(run: _Run, data: TrainData, cfg: TrainConfig, out: Path, state: dict, meta: dict, epoch: int,
               losses: list[float], seconds: float) -> tuple[dict, bool]:
    """Rank 0: validate, keep the best checkpoint, save the state and log; returns (row, stop)."""
    from genrescope.models import checkpoint as ckpt

    v = evaluate_split(run.model, data, "valid", run.device, cfg.aggregate)
    row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)) if losses else float("nan"),
           "lr": run.sched.get_last_lr()[0], "seconds": seconds,
           **{k: v[k] for k in ("track_accuracy", "track_macro_f1", "window_accuracy", "window_macro_f1")}}
    state["history"].append(row)
    # better macro-F1, or the same macro-F1 (common on a small valid split) with a lower
    # track log-loss: the model is more sure of the right answers
    f1, nll, best_nll = v["track_macro_f1"], v["track_nll"], state.get("best_nll", math.inf)
    improved = (f1 > state["best"] + 1e-9 or (f1 > state["best"] - 1e-9 and nll < best_nll - 1e-6)
                or not cfg.select_best)
    if improved:
        state.update(best=f1, best_nll=nll, best_epoch=epoch + 1, bad_epochs=0)
        ckpt.save_checkpoint(out / "best.safetensors", run.model, **_ckpt_args(meta, v, epoch + 1))
    else:
        state["bad_epochs"] += 1
    state["epoch"] = epoch + 1
    ckpt.save_checkpoint(out / "last.safetensors", run.model, **_ckpt_args(meta, v, epoch + 1))
    ckpt.save_training_state(out / "training_state.pt", state=state, model=run.model, optimizer=run.opt,
                             scheduler=run.sched, scaler=run.scaler)
    _log_row(out, row)
    print(f"epoch {epoch + 1:3d}  loss {row['train_loss']:.4f}  valid track acc "
          f"{row['track_accuracy']:.3f}  macro-F1 {row['track_macro_f1']:.3f}  "
          f"window acc {row['window_accuracy']:.3f}  ({row['seconds']:.1f} s)"
          + ("  *" if improved else ""), file=sys.stderr, flush=True)
    return row, state["bad_epochs"] >= cfg.patience and cfg.select_best


def _finish(out: Path, data: TrainData, device, cfg: TrainConfig, meta: dict) -> TrainResult:
    from genrescope.models import checkpoint as ckpt
    from genrescope.training.export import export_onnx

    best_path = out / "best.safetensors"
    model, info = ckpt.load_checkpoint(best_path)
    model.to(device)
    v = evaluate_split(model, data, "valid", device, cfg.aggregate)
    t = evaluate_split(model, data, "test", device, cfg.aggregate) if data.has_split("test") else None
    metrics = {_valid_key(meta): _plain(v), **({"test": _plain(t)} if t else {})}
    ckpt.save_checkpoint(best_path, model, **{**_ckpt_args(meta, v, info.get("epoch")), "metrics": metrics})
    model.cpu()
    prov = {k: meta[k] for k in ("backbone", "finetuned_from", "dataset", "command", "split") if k in meta}
    export_onnx(model, best_path.with_suffix(".onnx"), feature_config=meta["feature_config"],
                labels=data.classes, model_name=meta["model_name"], provenance=prov)
    history = _read_log(out)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return TrainResult(best_path, int(info.get("epoch") or 0), history, v, t)


def _plain(m: dict) -> dict:
    return {k: (v.to_dict() if hasattr(v, "to_dict") else v) for k, v in m.items()}


def _valid_key(meta: dict) -> str:
    # after a refit the valid tracks were trained on: their score must not pass for a validation score
    return "valid" if meta["train_config"].get("select_best", True) else "valid_seen_in_training"


def _ckpt_args(meta: dict, valid: dict, epoch: int | None) -> dict:
    extra = {k: v for k, v in meta.items() if k not in ("model_name", "labels", "feature_config")}
    extra.update(epoch=epoch, metrics={_valid_key(meta): _plain(valid)})
    return {"model_name": meta["model_name"], "labels": meta["labels"],
            "feature_config": meta["feature_config"], "extra": extra}


def train_step(net, opt, scaler, xb: np.ndarray, yb: np.ndarray, weights, device: torch.device) -> float:
    """One optimisation step on a batch (mixed precision when a GradScaler is given); returns the loss."""
    x = torch.from_numpy(xb).to(device)  # (B, n_bins, T) or (B, n_columns)
    y = torch.from_numpy(yb).to(device)  # (B, G) soft targets
    with torch.autocast(device.type, dtype=torch.float16, enabled=scaler is not None):
        logits = net(x)
    loss = _soft_ce(logits.float(), y, weights)
    opt.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        opt.step()
    return loss.item()


def _soft_ce(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy against soft targets (mixup), with optional class weights."""
    logp = nnf.log_softmax(logits, dim=-1)
    per_class = -target * logp
    if weights is not None:
        per_class = per_class * weights
    return per_class.sum(dim=-1).mean()


def _progress(items, desc: str, enabled: bool, total: int | None = None):
    if not enabled:
        return items
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=desc, total=total, leave=False, file=sys.stderr, dynamic_ncols=True)


def _log_row(out: Path, row: dict) -> None:
    path = out / "metrics.csv"
    new = not path.exists()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(row)
    try:  # TensorBoard only if installed
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return
    with SummaryWriter(str(out / "tb")) as tb:
        for k, v in row.items():
            if k != "epoch":
                tb.add_scalar(k, v, row["epoch"])


def _read_log(out: Path) -> list[dict]:
    path = out / "metrics.csv"
    if not path.exists():
        return []
    with open(path) as f:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
