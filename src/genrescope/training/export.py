"""ONNX export of a trained model, and the parity check against PyTorch.

The export is one self-contained ``.onnx`` file (format and metadata keys: see
:mod:`genrescope.inference.onnx_model`). Softmax is applied inside the graph, so the output
``probabilities`` is what every front end shows; models with ``forward_frames`` also
export ``frame_probabilities``. The batch axis is always dynamic, and the time axis too
for models that accept any length (all but the table MLP).

The legacy TorchScript exporter (``dynamo=False``) is used for every model: torch
2.13's default dynamo exporter fails on GRU/LSTM with a dynamic time axis, and one
exporter for all keeps the graphs comparable.
"""
from __future__ import annotations

import io
import json
import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from genrescope.version import __version__
from genrescope.config import FeatureConfig
from genrescope.errors import GenrescopeError
from genrescope.inference.onnx_model import (FRAMES_OUTPUT_NAME, INPUT_NAME, ONNX_FORMAT, ONNX_FORMAT_VERSION, OUTPUT_NAME,
                                   OnnxModel)

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17
PARITY_TOLERANCE = 1e-4


def _probabilities_module(model: "nn.Module", frames: bool) -> "nn.Module":
    """Wrap ``model`` so it returns softmax probabilities (and frame probabilities)."""
    import torch
    from torch import nn

    class Probabilities(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor):
            if not frames:
                return torch.softmax(self.model(x), dim=-1)  # (B, G)
            f = self.model.forward_frames(x)  # (B, T', G) logits
            pool = getattr(self.model, "pool_frames", None)
            logits = pool(f) if pool is not None else self.model(x)  # one pass when the model says how it pools
            return torch.softmax(logits, dim=-1), torch.softmax(f, dim=-1)

    return Probabilities()


def _metadata(model: "nn.Module", *, model_name: str, feature_config: FeatureConfig, labels: list[str],
              dynamic_time: bool, input_frames: int, outputs: list[str], provenance: dict | None) -> dict[str, str]:
    from genrescope.models import config_to_dict

    cfg = model.config
    meta = {
        "format": ONNX_FORMAT, "format_version": str(ONNX_FORMAT_VERSION), "genrescope_version": __version__,
        "model_name": model_name, "model_config": json.dumps(config_to_dict(cfg), sort_keys=True),
        "feature_config": json.dumps(feature_config.to_dict(), sort_keys=True), "labels": json.dumps(labels),
        "input_kind": cfg.kind, "n_bins": str(cfg.n_bins), "window_s": json.dumps(cfg.window_s),
        "min_frames": str(getattr(model, "min_frames", 1)), "dynamic_time": "true" if dynamic_time else "false",
        "input_frames": str(input_frames), "outputs": json.dumps(outputs), "output_activation": "softmax",
    }
    if FRAMES_OUTPUT_NAME in outputs:
        meta["frame_hop_s"] = json.dumps(getattr(model, "frame_stride", 1) / feature_config.frame_rate)
    if provenance:
        from genrescope.models.checkpoint import dumps_json

        meta["provenance"] = dumps_json(provenance, "provenance")
    return meta


def _checkpoint_provenance(info: dict[str, Any], path: str | os.PathLike) -> dict[str, Any]:
    from genrescope.models.checkpoint import PROVENANCE

    prov = {k: info[k] for k in PROVENANCE if info.get(k) is not None}
    prov["checkpoint"] = os.path.basename(os.fspath(path))
    return prov


def _trace(model: "nn.Module", example: "torch.Tensor", outputs: list[str], axes: dict, opset: int) -> bytes:
    """The ONNX bytes of ``model`` wrapped to output probabilities (eval mode, legacy exporter)."""
    import torch

    was_training = model.training
    model.eval()
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
            warnings.filterwarnings("ignore", message=".*batch_size other than 1.*")  # no h0 input: ORT uses zeros
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx\..*")
            # torch's RNN modules check input sizes in Python; the parity tests at several
            # batch sizes and lengths are what shows the trace generalises
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module=r"torch\.nn\.modules\.rnn")
            # musicnn's input-rank check and its per-channel batch-norm sign test read values that are
            # fixed for a given model (rank 3 input, trained weights): constants in the graph
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module=r"genrescope\.models\.musicnn")
            warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
            torch.onnx.export(_probabilities_module(model, FRAMES_OUTPUT_NAME in outputs), (example,), buf,
                              dynamo=False, input_names=[INPUT_NAME], output_names=outputs, dynamic_axes=axes,
                              opset_version=opset, do_constant_folding=True)
    finally:
        model.train(was_training)
    return buf.getvalue()


def export_onnx(model_or_checkpoint: "nn.Module | str | os.PathLike", out_path: str | os.PathLike, *,
                feature_config: FeatureConfig | dict | None = None, labels: Sequence[str] | None = None,
                model_name: str | None = None, dynamic_time: bool = True, frames: bool = True,
                opset: int = DEFAULT_OPSET, provenance: dict[str, Any] | None = None) -> Path:
    """Write a model as one self-contained ONNX file.

    Parameters
    ----------
    model_or_checkpoint : nn.Module or path
        A registry model, or a checkpoint file (which supplies the other arguments).
    out_path : path
        Destination ``.onnx`` (written atomically).
    feature_config, labels, model_name :
        Required with a module; with a checkpoint they override what it holds.
    dynamic_time : bool
        Let the time axis vary (where the model allows it).
    frames : bool
        Also export ``frame_probabilities`` for models with ``forward_frames``.
    provenance : dict, optional
        Stored as the ``provenance`` metadata (taken from the checkpoint if one is given).

    Returns
    -------
    Path
        ``out_path``.
    """
    import onnx

    from genrescope.models.checkpoint import atomic_path
    from genrescope.models import check_features

    if isinstance(model_or_checkpoint, (str, os.PathLike)):
        from genrescope.models.checkpoint import load_checkpoint

        model, info = load_checkpoint(model_or_checkpoint)
        feature_config = feature_config or info["feature_config"]
        labels = labels or info["labels"]
        model_name = model_name or info["model_name"]
        provenance = provenance or _checkpoint_provenance(info, model_or_checkpoint)
    else:
        model = model_or_checkpoint
    if feature_config is None or labels is None or model_name is None:
        raise GenrescopeError("export_onnx: a module needs feature_config, labels and model_name")
    if not hasattr(model, "config"):
        raise GenrescopeError(f"export_onnx: {type(model).__name__} does not follow the model config protocol")
    fc = feature_config if isinstance(feature_config, FeatureConfig) else FeatureConfig.from_dict(feature_config)
    labels = [str(x) for x in labels]
    check_features(model.config, fc)
    if len(labels) != model.config.n_classes:
        raise GenrescopeError(f"export_onnx: {len(labels)} labels for {model.config.n_classes} outputs")

    dynamic_time = dynamic_time and model.config.kind != "table" and getattr(model, "variable_length", False)
    outputs = [OUTPUT_NAME] + ([FRAMES_OUTPUT_NAME] if frames and hasattr(model, "forward_frames") else [])
    t0 = 0 if model.config.kind == "table" else max(fc.window_frames, getattr(model, "min_frames", 1))
    example = model.example_input(t0 or None, batch=2).to(next(model.parameters()).device)
    time_axis = {2: "time"} if dynamic_time else {}
    axes = {INPUT_NAME: {0: "batch", **time_axis}, OUTPUT_NAME: {0: "batch"},
            FRAMES_OUTPUT_NAME: {0: "batch", **({1: "frames"} if dynamic_time else {})}}
    proto = onnx.load_from_string(_trace(model, example, outputs, {k: axes[k] for k in [INPUT_NAME, *outputs]},
                                         opset))
    meta = _metadata(model, model_name=model_name, feature_config=fc, labels=labels, dynamic_time=dynamic_time,
                     input_frames=t0, outputs=outputs, provenance=provenance)
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    proto.doc_string = f"genrescope {model_name}: {model.config.kind} features -> genre probabilities"
    onnx.checker.check_model(proto)
    with atomic_path(out_path) as tmp:
        onnx.save(proto, tmp)
    return Path(out_path)


def _torch_outputs(model: "nn.Module", x: np.ndarray, frames: bool) -> list[np.ndarray]:
    import torch

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = _probabilities_module(model, frames)(torch.from_numpy(x).to(device))
    finally:
        model.train(was_training)
    out = out if isinstance(out, tuple) else (out,)
    return [o.cpu().numpy() for o in out]


def check_parity(onnx_path: str | os.PathLike | OnnxModel, model: "nn.Module",
                 inputs: np.ndarray | "torch.Tensor" | Sequence[np.ndarray]) -> float:
    """Largest absolute difference between ONNX Runtime's and PyTorch's outputs.

    Parameters
    ----------
    onnx_path : path or OnnxModel
        The export.
    model : nn.Module
        The PyTorch model it was exported from (run in eval mode).
    inputs : array or list of arrays
        One batch (N, n_bins, T), or several (e.g. of different lengths).

    Returns
    -------
    float
        max |onnx - torch| over every output (probabilities, and frame probabilities
        where exported) and every batch.
    """
    om = onnx_path if isinstance(onnx_path, OnnxModel) else OnnxModel(onnx_path)
    batches = [inputs] if hasattr(inputs, "shape") else list(inputs)
    worst = 0.0
    for x in batches:
        x = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float32)
        got = om.run(x)
        want = _torch_outputs(model, x, om.has_frames)
        for name, w in zip(om.outputs, want):
            if got[name].shape != w.shape:
                raise GenrescopeError(f"check_parity: {name} has shape {got[name].shape} in ONNX, {w.shape} in torch")
            worst = max(worst, float(np.abs(got[name] - w).max(initial=0.0)))
    return worst


def parity_inputs(model: "nn.Module", feature_config: FeatureConfig, *, seed: int = 0,
                  dynamic_time: bool = True) -> list[np.ndarray]:
    """Random test batches: one window, and (with a dynamic time axis) a longer and a shorter one."""
    rng = np.random.default_rng(seed)
    cfg = model.config
    if cfg.kind == "table":
        return [rng.normal(size=(3, cfg.n_bins)).astype(np.float32)]
    t = max(feature_config.window_frames, getattr(model, "min_frames", 1))
    lengths = [t]
    if dynamic_time and getattr(model, "variable_length", False):
        lengths += [2 * t + 3, max(getattr(model, "min_frames", 1), t // 2 + 1)]
    return [rng.normal(size=(3, cfg.n_bins, n)).astype(np.float32) for n in lengths]


def export_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike | None = None, *,
                      opset: int = DEFAULT_OPSET, dynamic_time: bool = True, check: bool = True
                      ) -> tuple[OnnxModel, float | None]:
    """Export a genrescope checkpoint to ONNX (``out``, default: beside it with ``.onnx``) and,
    with ``check``, compare ONNX Runtime's outputs with PyTorch's on random input.

    Returns the exported model and the largest absolute difference (None without ``check``);
    the caller compares it with :data:`PARITY_TOLERANCE`.
    """
    from genrescope.models.checkpoint import load_checkpoint

    dest = Path(out) if out else Path(checkpoint).with_suffix(".onnx")
    model, info = load_checkpoint(checkpoint)
    path = export_onnx(model, dest, feature_config=info["feature_config"], labels=info["labels"],
                       model_name=info["model_name"], dynamic_time=dynamic_time, opset=opset,
                       provenance=_checkpoint_provenance(info, checkpoint))
    om = OnnxModel(path)
    if not check:
        return om, None
    return om, check_parity(om, model, parity_inputs(model, om.feature_config, dynamic_time=om.dynamic_time))


__all__ = ["export_onnx", "check_parity", "parity_inputs", "export_checkpoint", "DEFAULT_OPSET", "PARITY_TOLERANCE"]
