"""One training run: from a dataset (or a feature table) to a checkpoint, an ONNX export,
logs and plots (``genrescope train``). Glue between a :class:`TrainRequest`, the datasets,
the training loop and the evaluation; the loop itself is :func:`genrescope.training.train.fit`."""
from __future__ import annotations

import json
import logging
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genrescope.config import FeatureConfig
from genrescope.errors import GenrescopeError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainRequest:
    """Everything one ``genrescope train`` run is asked for (the command's flags, typed).

    ``model`` is the architecture (``genrescope models``); ``backbone``/``head``/``finetune``
    ask for a head on a pretrained tagger; ``layout``/``split``/``fma_subset`` how the dataset
    is read and split; the optimisation and feature fields override the defaults of
    :class:`~genrescope.training.train.TrainConfig` and of the model's feature config.
    """

    dataset: str | None = None
    model: str = "resnet-chunk"
    model_opt: tuple[str, ...] = ()
    out: str | None = None
    features_csv: str | None = None
    backbone: str | None = None
    head: str = "linear"
    finetune: int | None = None
    layout: str = "auto"
    split: str = "auto"
    fma_subset: str | None = None
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-2
    patience: int = 8
    balance: str = "weights"
    windows_per_track: int = 4
    augment: str = "all"
    seed: int = 0
    device: str = "auto"
    resume: bool = False
    refit: bool = False
    sr: int | None = None
    n_mels: int | None = None
    window_s: float | None = None
    window_hop_s: float | None = None
    cache: str | None = None
    jobs: int = 0
    no_progress: bool = False


def feature_config_for(model_name: str, req) -> FeatureConfig:
    """The model's default front end with the command line's overrides."""
    from genrescope.models import default_features

    fc = default_features(model_name)
    changes = {k: getattr(req, k) for k in ("sr", "n_mels", "window_s", "window_hop_s")
               if getattr(req, k, None) is not None}
    if "sr" in changes and getattr(req, "fmax", None) is None and fc.fmax is not None:
        changes["fmax"] = min(fc.fmax, changes["sr"] / 2)
    return fc.replace(**changes) if changes else fc


def parse_model_opts(opts: list[str]) -> dict:
    """``["dropout=0.5", "hidden=256,64"]`` -> ``{"dropout": 0.5, "hidden": (256, 64)}``."""
    def value(v: str):
        if v == "":
            return ()
        if "," in v:
            return tuple(value(x) for x in v.split(",") if x)
        for conv in (int, float):
            try:
                return conv(v)
            except ValueError:
                pass
        return {"true": True, "false": False, "none": None}.get(v.lower(), v)

    out = {}
    for o in opts:
        if "=" not in o:
            raise GenrescopeError(f"--model-opt {o!r}: expected KEY=VALUE")
        k, v = o.split("=", 1)
        out[k.strip().replace("-", "_")] = value(v.strip())
    return out


def train_config_for(req: TrainRequest):
    from genrescope.training.augment import AugmentConfig
    from genrescope.training.train import TrainConfig

    aug = req.augment
    names = None if aug in (None, "all") else ([] if aug == "none" else [a.strip() for a in aug.split(",") if a.strip()])
    from genrescope.training.augment import AUGMENTATIONS

    bad = sorted(set(names or []) - set(AUGMENTATIONS))
    if bad:
        raise GenrescopeError(f"--augment: unknown {bad}; choose from {', '.join(AUGMENTATIONS)}, all or none")
    kw = dict(epochs=req.epochs, batch_size=req.batch_size, lr=req.lr, weight_decay=req.weight_decay,
              patience=req.patience, seed=req.seed, balance=req.balance, augment=AugmentConfig.from_names(names),
              device=req.device)
    if req.windows_per_track:
        kw["windows_per_track"] = req.windows_per_track
    return TrainConfig(**kw)


def load_table_data(csv_path: str, feature_config: FeatureConfig, *, seed: int = 0):
    """TrainData from a GTZAN-features-style CSV (its ``split`` column, else a stratified split)."""
    from genrescope.training.data import TrainData
    from genrescope.features.gtzan_table import read_table

    names, X, labels, splits = read_table(csv_path)
    classes = sorted(set(labels))
    y = np.array([classes.index(lab) for lab in labels])
    if splits is None:
        from genrescope.datasets.manifest import Track
        from genrescope.datasets.splits import split_tracks

        tracks = split_tracks([Track(path=n, label=lab, track_id=n) for n, lab in zip(names, labels)], seed=seed)
        splits = [t.split for t in tracks]
    items = {s: [X[i].astype(np.float32) for i in range(len(X)) if splits[i] == s] for s in ("train", "valid", "test")}
    ys = {s: np.array([y[i] for i in range(len(X)) if splits[i] == s], dtype=np.int64) for s in items}
    ids = {s: [names[i] for i in range(len(X)) if splits[i] == s] for s in items}
    return TrainData(classes, "table", feature_config, items, ys, ids)


@dataclass(frozen=True)
class Plan:
    """What ``genrescope train`` was asked for, resolved once (the request is never rewritten).

    ``model`` is the architecture really trained (``musicnn-finetune`` for ``--finetune``,
    ``features-mlp`` for a head on ``--backbone`` embeddings), ``model_opt`` the model-config
    overrides, ``backbone`` the shipped model to embed with (None: train on features).
    """

    model: str
    model_opt: tuple[str, ...]
    backbone: str | None = None
    provenance: dict = field(default_factory=dict)


def plan_for(req: TrainRequest) -> Plan:
    """Resolve ``--model``, ``--backbone``, ``--finetune`` and ``--head`` into one :class:`Plan`."""
    from genrescope.models import model_names

    backbone, finetune = getattr(req, "backbone", None), getattr(req, "finetune", None)
    head_hidden = "hidden=" + ("" if getattr(req, "head", "linear") == "linear" else "256,")
    opts = tuple(req.model_opt)
    if finetune is not None:
        if not backbone:
            raise GenrescopeError("--finetune N needs --backbone NAME (a musicnn tagger)")
        # end to end on log-mel windows: the backbone is a part of the model, not a feature extractor
        return Plan("musicnn-finetune", (f"backbone={backbone}", f"train_blocks={finetune}", head_hidden, *opts),
                    None, {"finetuned_from": backbone})
    model = "features-mlp" if backbone and req.model == "resnet-chunk" else req.model  # the CLI default: a head
    if model not in model_names():
        raise GenrescopeError(f"unknown model {model!r}; `genrescope models` lists them")
    if not backbone:
        return Plan(model, opts)
    if model != "features-mlp":
        raise GenrescopeError("--backbone trains a head: use --model features-mlp (the default with --backbone)")
    if not any(o.startswith("hidden=") for o in opts):
        opts = (*opts, head_hidden, "dropout=0.3")
    return Plan(model, opts, backbone, {"backbone": backbone})


def _load_data(req: TrainRequest, plan: Plan, fc: FeatureConfig):
    """The training data, the feature config it was computed with, and a description of the dataset."""
    from genrescope.models import default_config

    if req.features_csv and not plan.backbone:
        return load_table_data(req.features_csv, fc, seed=req.seed), fc, {"features_csv": str(req.features_csv)}
    if not req.dataset:
        raise GenrescopeError("--backbone needs a DATASET folder or manifest" if plan.backbone else
                              "give a DATASET folder/manifest, or --features-csv TABLE.csv")
    from genrescope.datasets import load_dataset
    from genrescope.datasets.layouts import describe, split_problems

    manifest = load_dataset(req.dataset, layout=req.layout, split=req.split, seed=req.seed,
                            fma_subset=req.fma_subset)
    print(describe(manifest), file=sys.stderr)  # the first line: which layout and split were chosen
    for problem in split_problems(manifest):
        print(f"genrescope: warning: {problem}", file=sys.stderr)
    desc = {"root": str(req.dataset), "layout": manifest.layout, "split_policy": manifest.split_policy}
    if plan.backbone:
        from genrescope.inference.backbone import Backbone
        from genrescope.training.embed import train_data

        bb = Backbone(plan.backbone)
        data = train_data(manifest, bb, cache_root=req.cache, jobs=req.jobs, progress=not req.no_progress)
        return data, bb.feature_config, desc
    from genrescope.training.data import from_manifest

    probe = default_config(plan.model, feature_config=fc, n_classes=max(1, len(manifest.labels)))
    data = from_manifest(manifest, fc, probe.kind, cache_root=req.cache, jobs=req.jobs,
                         progress=not req.no_progress)
    return data, fc, desc


def _refit(req: TrainRequest, plan: Plan, data, out: Path, cfg, fc, mcfg, selection, base_prov: dict):
    """Retrain on train + valid for the selected number of epochs; the result replaces best.*"""
    import dataclasses

    from genrescope.training.train import fit

    epochs = max(1, selection.best_epoch)
    print(f"refit on train + valid for {epochs} epochs (the selected count)", file=sys.stderr)
    sel = {k: v for k, v in selection.valid.items() if k != "report"}
    rcfg = dataclasses.replace(cfg, epochs=epochs, select_best=False)
    prov = {**base_prov, "command": "genrescope " + shlex.join(sys.argv[1:]),
            "selection": {"split": "valid", "best_epoch": selection.best_epoch, **sel},
            "note": "refit on train+valid after selection; the stored 'valid' metrics are on training data"}
    result = fit(plan.model, data.merged_for_refit(), out / "refit", cfg=rcfg, feature_config=fc, model_config=mcfg,
                 provenance=prov, progress=not req.no_progress)
    result.valid = selection.valid  # report the honest, pre-refit validation score
    return result


def format_split_summary(summary: dict, classes: list[str]) -> str:
    """``10 classes: train 28 tracks, valid 6 tracks, test 6 tracks``, with the classes a split lacks.

    ``summary`` is :meth:`~genrescope.training.data.TrainData.split_summary`'s
    ``{split: {"tracks": n, "per_class": [...]}}``.
    """
    parts = []
    for split, info in summary.items():
        empty = [c for c, n in zip(classes, info["per_class"]) if n == 0]
        parts.append(f"{split} {info['tracks']} tracks" + (f" (none of {', '.join(empty)})" if empty else ""))
    return f"{len(classes)} classes: {', '.join(parts)}"


def run_train(req: TrainRequest) -> int:
    from genrescope.errors import require_torch

    require_torch("genrescope train")
    from genrescope.models import default_config
    from genrescope.training.train import fit

    plan = plan_for(req)
    cfg = train_config_for(req)
    data, fc, dataset_desc = _load_data(req, plan, feature_config_for(plan.model, req))
    opts = parse_model_opts(list(plan.model_opt))
    if data.kind == "table":  # the width of a row: 57 table columns, or the backbone's embedding size
        opts.setdefault("n_bins", data.n_bins)
    mcfg = default_config(plan.model, feature_config=fc, n_classes=data.n_classes, **opts)
    if mcfg.kind != data.kind:
        raise GenrescopeError(f"model {plan.model} reads {mcfg.kind} input, the data is {data.kind}")
    out = Path(req.out or f"runs/{plan.model}")
    print(f"training {plan.model} on {format_split_summary(data.split_summary(), data.classes)} -> {out}",
          file=sys.stderr)
    base_prov = {"dataset": dataset_desc, **plan.provenance}
    result = fit(plan.model, data, out, cfg=cfg, feature_config=fc, model_config=mcfg, resume=req.resume,
                 provenance={**base_prov, "command": "genrescope " + shlex.join(sys.argv[1:])},
                 progress=not req.no_progress)
    if result is None:  # a non-zero rank under torchrun
        return 0
    if req.refit:
        result = _refit(req, plan, data, out, cfg, fc, mcfg, result, base_prov)
    _report(out, result, data.classes)
    return 0


def _report(out: Path, result, classes: list[str]) -> None:
    """Plots, the score lines and ``summary.json`` of a finished run."""
    from genrescope.training.evaluate import write_plots

    write_plots(out, result.history, result.test or result.valid, classes)
    v = result.valid
    print(f"best epoch {result.best_epoch}: valid track accuracy {v['track_accuracy']:.3f}, "
          f"macro-F1 {v['track_macro_f1']:.3f} ({v['tracks']} tracks)")
    if result.test:
        t = result.test
        print(f"test (never used for selection): track accuracy {t['track_accuracy']:.3f}, "
              f"macro-F1 {t['track_macro_f1']:.3f} ({t['tracks']} tracks)")
    print(f"checkpoint {result.checkpoint}\nonnx       {result.checkpoint.with_suffix('.onnx')}")
    (out / "summary.json").write_text(json.dumps({"best_epoch": result.best_epoch,
                                                  "checkpoint": str(result.checkpoint)}, indent=2))
