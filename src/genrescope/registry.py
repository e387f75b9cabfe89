"""Models by name or path, ready for inference.

Wherever a checkpoint path is accepted, a shipped model's name works too
(``genrescope models --pretrained`` lists them). Inference runs on ONNX Runtime by
default, so the light install needs no torch; ``runtime="torch"`` loads the PyTorch
checkpoint instead (needs the ``train`` extra).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np

from genrescope.config import FeatureConfig
from genrescope.errors import CheckpointError, GenrescopeError

#: The model ``genrescope predict`` uses when none is named.
DEFAULT_MODEL = "musicnn"

#: Shipped ensembles: name -> members run on the same windows. Their labels are the union
#: of the members' labels; a label two members share gets the mean of their probabilities.
ENSEMBLES = {"musicnn": ("musicnn-msd", "musicnn-mtt")}
RUNTIMES = ("onnx", "torch")


def pretrained_root() -> Path:
    return Path(str(resources.files("genrescope") / "pretrained"))


def pretrained_names() -> list[str]:
    """Names of the models shipped inside the package."""
    root = pretrained_root()
    if not root.is_dir():
        return []
    files = sorted(p.name for p in root.iterdir() if (p / "model.onnx").is_file())
    return sorted(files + [e for e, members in ENSEMBLES.items() if all(m in files for m in members)])


def pretrained_info(name: str) -> dict:
    """The shipped model's ``config.json`` (provenance, licence, labels, metrics)."""
    if name in ENSEMBLES:
        return {"name": name, "ensemble": list(ENSEMBLES[name]),
                "description": "the mean of the members' tag probabilities, label by label"}
    path = pretrained_root() / name / "config.json"
    if not path.is_file():
        raise CheckpointError(f"no shipped model named {name!r}; shipped: {', '.join(pretrained_names()) or 'none'}")
    return json.loads(path.read_text())


@dataclass
class InferenceModel:
    """What prediction needs from a model, whatever runs it.

    ``predict_windows`` maps (N, n_bins, T) windows (or (N, n_columns) table rows) to
    (N, G) probabilities.
    """

    name: str
    labels: list[str]
    feature_config: FeatureConfig
    kind: str
    window_frames: int | None
    multi_label: bool
    predict_windows: Callable[[np.ndarray], np.ndarray]
    source: str
    runtime: str
    #: whole-song models: (n_bins, T) features -> (T', G) probabilities, one row every frame_hop_s
    predict_frames: Callable[[np.ndarray], np.ndarray] | None = None
    frame_hop_s: float | None = None

    @property
    def genre_labels(self) -> list[str]:
        from genrescope.taxonomy import genre_labels_of

        return genre_labels_of(self.labels, self.multi_label)


def resolve_model_path(model: str | os.PathLike, runtime: str = "onnx") -> tuple[str, Path]:
    """(display name, file) for a shipped name, a checkpoint or an ONNX file."""
    s = str(model)
    if s == "default":
        s = DEFAULT_MODEL
    p = Path(s)
    if s in pretrained_names():
        d = pretrained_root() / s
        if runtime == "torch":
            for cand in ("checkpoint.safetensors", "weights.safetensors"):
                if (d / cand).is_file():
                    return s, d / cand
            raise CheckpointError(f"shipped model {s!r} has no PyTorch weights; use --runtime onnx")
        return s, d / "model.onnx"
    if p.is_file():
        if runtime == "onnx" and p.suffix == ".safetensors":
            onnx = p.with_suffix(".onnx")
            if onnx.is_file():
                return _display_name(p), onnx
            raise CheckpointError(f"{p}: no ONNX export beside this checkpoint; run `genrescope export {p}` "
                                  f"or use --runtime torch")
        return _display_name(p), p
    if p.is_dir() and (p / "best.safetensors").is_file():
        return resolve_model_path(p / "best.safetensors", runtime)
    raise CheckpointError(f"{s}: not a file and not a shipped model (shipped: {', '.join(pretrained_names())})")


def _display_name(p: Path) -> str:
    """``run/best`` for a training run's files, else the file's stem."""
    return f"{p.parent.name}/{p.stem}" if p.stem in ("best", "last") and p.parent.name else p.stem


def load_inference_model(model: str | os.PathLike = "default", *, runtime: str = "onnx",
                         threads: int | None = None) -> InferenceModel:
    """Load a model by shipped name or path for :class:`genrescope.predict.Predictor`."""
    if runtime not in RUNTIMES:
        raise GenrescopeError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    if str(model) in ENSEMBLES or (str(model) == "default" and DEFAULT_MODEL in ENSEMBLES):
        name = DEFAULT_MODEL if str(model) == "default" else str(model)
        return ensemble(name, [load_inference_model(m, runtime=runtime, threads=threads) for m in ENSEMBLES[name]])
    name, path = resolve_model_path(model, runtime)
    if path.suffix == ".onnx":
        return _from_onnx(name, path, threads)
    return _from_torch(name, path, threads)


def _from_onnx(name: str, path: Path, threads: int | None) -> InferenceModel:
    from genrescope.onnx_model import OnnxModel

    m = OnnxModel(path, threads=threads)
    multi = m.metadata.get("output_activation", "softmax") == "sigmoid"
    im = InferenceModel(name, list(m.labels), m.feature_config, m.input_kind, m.window_frames, multi,
                        m.predict_windows, str(path), "onnx")
    if m.window_s is None and m.has_frames:
        im.predict_frames, im.frame_hop_s = m.predict_frames, m.frame_hop_s
    return _with_backbone(im, m.provenance.get("backbone"))


def _with_backbone(head: InferenceModel, backbone: str | None) -> InferenceModel:
    """A head trained on backbone embeddings runs behind its backbone."""
    if not backbone:
        return head
    from genrescope.embeddings import head_inference_model

    return head_inference_model(head.name, head, backbone)


def _from_torch(name: str, path: Path, threads: int | None) -> InferenceModel:
    try:
        import torch
    except ImportError as e:
        raise GenrescopeError("--runtime torch needs PyTorch: pip install 'genrescope[train]'") from e
    from genrescope.checkpoint import load_checkpoint

    if threads:
        torch.set_num_threads(threads)
    if path.name == "weights.safetensors":  # a converted pretrained tagger (genrescope.models.musicnn)
        return _from_torch_tagger(name, path)
    model, info = load_checkpoint(path)
    fc = info["feature_config"]
    fc = fc if isinstance(fc, FeatureConfig) else FeatureConfig.from_dict(fc)
    cfg = model.config
    multi = getattr(cfg, "output_activation", "softmax") == "sigmoid"

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits = model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
            return (torch.sigmoid(logits) if multi else torch.softmax(logits, -1)).numpy()

    window_frames = None if cfg.window_s is None else fc.window_frames
    im = InferenceModel(name, list(info["labels"]), fc, cfg.kind, window_frames, multi, run, str(path), "torch")
    if cfg.window_s is None and hasattr(model, "forward_frames"):
        def frames(x: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                logits = model.forward_frames(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None])
                return torch.softmax(logits[0], -1).numpy()

        im.predict_frames, im.frame_hop_s = frames, model.frame_stride / fc.frame_rate
    return _with_backbone(im, info.get("backbone"))


def ensemble(name: str, members: list[InferenceModel]) -> InferenceModel:
    """Members that read the same features, run on the same windows, outputs merged by label."""
    first = members[0]
    for m in members[1:]:
        if (m.feature_config, m.kind, m.window_frames) != (first.feature_config, first.kind, first.window_frames):
            raise CheckpointError(f"ensemble {name}: {m.name} reads different features from {first.name}")
    labels: list[str] = []
    for m in members:
        labels += [lab for lab in m.labels if lab not in labels]
    # columns[i][j]: where member i's label j lands; counts: how many members feed each label
    columns = [np.array([labels.index(lab) for lab in m.labels]) for m in members]
    counts = np.zeros(len(labels))
    for c in columns:
        counts[c] += 1

    def run(x: np.ndarray) -> np.ndarray:
        out = np.zeros((len(x), len(labels)), np.float64)
        for m, c in zip(members, columns):
            out[:, c] += m.predict_windows(x)
        return (out / counts).astype(np.float32)

    return InferenceModel(name, labels, first.feature_config, first.kind, first.window_frames,
                          all(m.multi_label for m in members), run,
                          " + ".join(m.source for m in members), first.runtime)


def _from_torch_tagger(name: str, path: Path) -> InferenceModel:
    import torch

    from genrescope.models.musicnn import load_musicnn

    model, config = load_musicnn(path.parent)
    fc = FeatureConfig.from_dict(config["features"])

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()

    return InferenceModel(name, list(config["labels"]), fc, "log_mel", fc.window_frames, True, run, str(path), "torch")
