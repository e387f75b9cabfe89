"""The training loop: loss, optimiser, schedule, early stopping, checkpoints, resume.

Plain and readable on purpose. One epoch = every training track contributes
``windows_per_track`` windows (random crops when augmentation is on); the epoch's plan
and every augmentation parameter come from ``numpy.random.default_rng([seed, epoch])``,
so a run is reproducible on CPU and a resumed run equals an uninterrupted one.

Under ``torchrun --nproc_per_node=N`` every process builds the same epoch plan and
takes every N-th batch; gradients are averaged by DistributedDataParallel (gloo on CPU,
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
from genrescope.training.metrics import score

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


# ---------------------------------------------------------------- distributed
@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device: torch.device) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as td

    if not td.is_initialized():
        td.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(td.get_rank(), td.get_world_size())


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            local = int(os.environ.get("LOCAL_RANK", "0"))
            return torch.device(f"cuda:{local}")
        return torch.device("cpu")
    return torch.device(name)


# ---------------------------------------------------------------- schedule
def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up then cosine decay to 5% of the peak."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


# ---------------------------------------------------------------- one epoch
def _batches(data: TrainData, cfg: TrainConfig, epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The epoch's (x, y) batches, augmented; identical on every rank."""
    rng = np.random.default_rng([cfg.seed, epoch])
    x, y = data.epoch_samples(rng, windows_per_track=cfg.windows_per_track, crop=cfg.augment.crop,
                              balanced=cfg.balance == "sampler")
    order = rng.permutation(len(x))
    for i in range(0, len(order), cfg.batch_size):
        idx = order[i:i + cfg.batch_size]
        xb = x[idx]
        yb = np.eye(data.n_classes, dtype=np.float32)[y[idx]]
        if data.kind != "table":
            d = augment.draw(rng, cfg.augment, len(idx), xb.shape[1], xb.shape[2])
            xb, yb = augment.apply(xb, yb, d, db_features=data.db_features)
        yield xb, yb


def predict_tracks(model: torch.nn.Module, data: TrainData, split: str, device: torch.device,
                   batch_size: int = 64) -> tuple[list[np.ndarray], np.ndarray]:
    """Window probabilities of every track of a split (eval mode, no augmentation)."""
    model.eval()
    out = []
    with torch.no_grad():
        for windows in data.track_windows(split):
            probs = []
            for i in range(0, len(windows), batch_size):
                xb = torch.from_numpy(windows[i:i + batch_size]).to(device)
                probs.append(torch.softmax(model(xb).float(), dim=-1).cpu().numpy())
            out.append(np.concatenate(probs))
    return out, data.labels_of(split)


def evaluate_split(model, data: TrainData, split: str, device, aggregate: str = "mean") -> dict:
    """Window- and track-level accuracy and macro-F1 on one split."""
    from genrescope.features.windows import aggregate as agg

    window_probs, y = predict_tracks(model, data, split, device)
    track_probs = [agg(p, aggregate) for p in window_probs]
    track_pred = np.array([p.argmax() for p in track_probs])
    # the mean negative log-probability of each track's true class: breaks ties in selection
    track_nll = float(np.mean([-np.log(max(float(p[t]), 1e-12)) for p, t in zip(track_probs, y)])) if len(y) else 0.0
    win_true = np.concatenate([np.full(len(p), t) for p, t in zip(window_probs, y)])
    win_pred = np.concatenate([p.argmax(1) for p in window_probs])
    track = score(y, track_pred, data.classes)
    window = score(win_true, win_pred, data.classes)
    return {"split": split, "tracks": int(len(y)), "windows": int(len(win_true)),
            "track_accuracy": track.accuracy, "track_macro_f1": track.macro_f1,
            "window_accuracy": window.accuracy, "window_macro_f1": window.macro_f1,
            "track_nll": track_nll, "report": track}


# ---------------------------------------------------------------- the loop
@dataclass
class TrainResult:
    checkpoint: Path
    best_epoch: int
    history: list[dict]
    valid: dict
    test: dict | None


def fit(model_name: str, data: TrainData, out_dir: str | os.PathLike, *, cfg: TrainConfig,
        feature_config: FeatureConfig, model_config=None, resume: bool = False,
        provenance: dict | None = None, progress: bool = True,
        on_epoch: Callable[[dict], None] | None = None) -> TrainResult | None:
    """Train ``model_name`` on ``data`` and write checkpoints, ONNX and logs to ``out_dir``.

    Returns the result on rank 0 (None on other ranks). Selection is on the validation
    split (track-level macro-F1); the test split, if any, is scored once with the
    selected weights and never used for any decision.
    """
    from genrescope.models import checkpoint as ckpt
    from genrescope.models import build_model, default_config

    out = Path(out_dir)
    device = pick_device(cfg.device)
    dist = _init_distributed(device)
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
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
    steps_per_epoch = max(1, math.ceil(data.epoch_size(cfg.windows_per_track) / cfg.batch_size / dist.world))
    total = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, total, cfg.warmup_epochs * steps_per_epoch))
    weights = torch.from_numpy(data.class_weights()).to(device) if cfg.balance == "weights" else None
    use_amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if use_amp else None

    state = {"epoch": 0, "best": -1.0, "best_nll": math.inf, "best_epoch": -1, "bad_epochs": 0, "history": []}
    state_path = out / "training_state.pt"
    if resume:
        if not state_path.exists():
            raise GenrescopeError(f"{state_path}: nothing to resume (no training state in {out})")
        state = ckpt.load_training_state(state_path, model=model, optimizer=opt, scheduler=sched, scaler=scaler)
        log.info("resuming at epoch %d", state["epoch"])
    meta = {"model_name": model_name, "labels": data.classes, "feature_config": feature_config,
            "train_config": cfg.to_dict(), "split": data.split_summary(), **(provenance or {})}

    for epoch in range(state["epoch"], cfg.epochs):
        t0 = time.perf_counter()
        net.train()
        losses = []
        batches = list(_batches(data, cfg, epoch))[dist.rank::dist.world]
        bar = _progress(batches, f"epoch {epoch + 1}/{cfg.epochs}", progress and dist.main)
        for xb, yb in bar:
            losses.append(train_step(net, opt, scaler, xb, yb, weights, device))
            sched.step()
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{np.mean(losses):.3f}")
        stop = False
        if dist.main:
            v = evaluate_split(model, data, "valid", device, cfg.aggregate)
            row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)) if losses else float("nan"),
                   "lr": sched.get_last_lr()[0], "seconds": time.perf_counter() - t0,
                   **{k: v[k] for k in ("track_accuracy", "track_macro_f1", "window_accuracy", "window_macro_f1")}}
            state["history"].append(row)
            # better macro-F1, or the same macro-F1 (common on a small valid split) with a lower
            # track log-loss: the model is more sure of the right answers
            f1, nll, best_nll = v["track_macro_f1"], v["track_nll"], state.get("best_nll", math.inf)
            improved = (f1 > state["best"] + 1e-9 or (f1 > state["best"] - 1e-9 and nll < best_nll - 1e-6)
                        or not cfg.select_best)
            if improved:
                state.update(best=f1, best_nll=nll, best_epoch=epoch + 1, bad_epochs=0)
                ckpt.save_checkpoint(out / "best.safetensors", model, **_ckpt_args(meta, v, epoch + 1))
            else:
                state["bad_epochs"] += 1
            stop = state["bad_epochs"] >= cfg.patience and cfg.select_best
            state["epoch"] = epoch + 1
            ckpt.save_checkpoint(out / "last.safetensors", model, **_ckpt_args(meta, v, epoch + 1))
            ckpt.save_training_state(state_path, state=state, model=model, optimizer=opt, scheduler=sched,
                                     scaler=scaler)
            _log_row(out, row)
            print(f"epoch {epoch + 1:3d}  loss {row['train_loss']:.4f}  valid track acc "
                  f"{row['track_accuracy']:.3f}  macro-F1 {row['track_macro_f1']:.3f}  "
                  f"window acc {row['window_accuracy']:.3f}  ({row['seconds']:.1f} s)"
                  + ("  *" if improved else ""), file=sys.stderr, flush=True)
            if on_epoch:
                on_epoch(row)
        if dist.world > 1:
            flag = torch.tensor([int(stop)], device=device)
            torch.distributed.broadcast(flag, 0)
            stop = bool(flag.item())
        if stop:
            if dist.main:
                log.info("early stop: no improvement for %d epochs", cfg.patience)
            break
    if not dist.main:
        return None
    return _finish(out, data, device, cfg, meta)


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


def _progress(items, desc: str, enabled: bool):
    if not enabled:
        return items
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=desc, leave=False, file=sys.stderr, dynamic_ncols=True)


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
