"""Load a model for inference on ONNX Runtime (default, no torch) or PyTorch.

``runtime="torch"`` loads the PyTorch checkpoint instead of the ONNX export (needs the
``train`` extra). A head trained on backbone embeddings is composed behind its backbone.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from genrescope.config import FeatureConfig
from genrescope.errors import GenrescopeError
from genrescope.inference.ensemble import ensemble
from genrescope.inference.model import InferenceModel
from genrescope.inference.registry import DEFAULT_MODEL, ENSEMBLES, resolve_model_path

RUNTIMES = ("onnx", "torch")


def load_inference_model(model: str | os.PathLike = "default", *, runtime: str = "onnx",
                         threads: int | None = None) -> InferenceModel:
    """Load a model by shipped name or path for :class:`genrescope.inference.predict.Predictor`."""
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
    from genrescope.inference.onnx_model import OnnxModel

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
    from genrescope.inference.backbone import head_inference_model

    return head_inference_model(head.name, head, backbone)


def _from_torch(name: str, path: Path, threads: int | None) -> InferenceModel:
    try:
        import torch
    except ImportError as e:
        raise GenrescopeError("--runtime torch needs PyTorch: pip install 'genrescope[train]'") from e
    from genrescope.models.checkpoint import load_checkpoint

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


def _from_torch_tagger(name: str, path: Path) -> InferenceModel:
    import torch

    from genrescope.models.musicnn import load_musicnn

    model, config = load_musicnn(path.parent)
    fc = FeatureConfig.from_dict(config["features"])

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()

    return InferenceModel(name, list(config["labels"]), fc, "log_mel", fc.window_frames, True, run, str(path), "torch")
