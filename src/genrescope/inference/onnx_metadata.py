"""An ONNX export's metadata, read as untrusted input.

A model given by path (``--model``, ``--model-dir``, a head's files) is a file like any
other: every key of the metadata :class:`~genrescope.inference.onnx_model.OnnxModel`
relies on is type- and range-checked here, and the graph's declared input and output
shapes are held against it (ten labels on a fifty-output graph would give a (T, 50)
timeline against ten labels). Every problem is a :class:`~genrescope.errors.GenrescopeError`
with one line saying which key is wrong.
"""
from __future__ import annotations

import json
from typing import Any

from genrescope.config import FeatureConfig
from genrescope.errors import GenrescopeError

#: The metadata format version this genrescope reads.
ONNX_FORMAT_VERSION = 1
INPUT_KINDS = ("log_mel", "mfcc", "stft", "table")
_MAX_LABELS = 100_000
_MAX_FRAMES = 1 << 20


def _json(meta: dict, key: str, default: str | None = None) -> Any:
    raw = meta.get(key, default)
    if raw is None:
        raise GenrescopeError(f"the metadata has no {key!r}")
    try:
        return json.loads(raw)
    except ValueError:
        raise GenrescopeError(f"{key}={raw[:40]!r} is not JSON") from None


def _number(meta: dict, key: str, default: str | None, lo: float, hi: float, *, integer: bool = False,
            nullable: bool = False) -> Any:
    """A JSON number within [lo, hi] (NaN and infinity fail), or None where ``nullable``."""
    value = _json(meta, key, default)
    if value is None and nullable:
        return None
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not lo <= value <= hi:
        raise GenrescopeError(f"{key}={value!r} is not {'an integer' if integer else 'a number'} "
                              f"in [{lo:g}, {hi:g}]")
    return value


def _strings(meta: dict, key: str, most: int) -> list[str]:
    value = _json(meta, key)
    if not isinstance(value, list) or not 1 <= len(value) <= most or not all(isinstance(x, str) for x in value):
        raise GenrescopeError(f"{key} must be a list of 1 to {most} strings")
    return value


def _object(meta: dict, key: str, default: str | None = None) -> dict:
    value = _json(meta, key, default)
    if not isinstance(value, dict):
        raise GenrescopeError(f"{key} must be a JSON object")
    return value


def read_onnx_metadata(meta: dict[str, str]) -> dict[str, Any]:
    """The checked attributes of an export from its string-to-string metadata.

    Returns
    -------
    dict
        ``metadata``, ``model_name``, ``model_config``, ``feature_config``
        (:class:`~genrescope.config.FeatureConfig`, bounds-checked), ``labels``,
        ``input_kind``, ``n_bins``, ``window_s``, ``min_frames``, ``dynamic_time``,
        ``input_frames``, ``outputs``, ``frame_hop_s``, ``provenance``.

    Raises
    ------
    GenrescopeError
        A missing, mistyped or out-of-range key, or a format version newer than this reads.
    """
    version = _number(meta, "format_version", None, 1, 10**6, integer=True)
    if version > ONNX_FORMAT_VERSION:
        raise GenrescopeError(f"export format {version} is newer than this genrescope reads ({ONNX_FORMAT_VERSION})")
    kind = meta.get("input_kind")
    if kind not in INPUT_KINDS:
        raise GenrescopeError(f"input_kind {kind!r} is not one of {INPUT_KINDS}")
    outputs = _strings(meta, "outputs", 16)
    if outputs[0] != "probabilities":
        raise GenrescopeError(f"the first output must be 'probabilities', got {outputs[0]!r}")
    name = meta.get("model_name")
    if not isinstance(name, str) or not 0 < len(name) <= 200:
        raise GenrescopeError("model_name must be a name of 1 to 200 characters")
    return {
        "metadata": dict(meta), "model_name": name, "model_config": _object(meta, "model_config"),
        "feature_config": FeatureConfig.from_dict(_object(meta, "feature_config")),
        "labels": _strings(meta, "labels", _MAX_LABELS), "input_kind": kind,
        "n_bins": _number(meta, "n_bins", None, 1, 1 << 16, integer=True),
        "window_s": _number(meta, "window_s", None, 1e-3, 600.0, nullable=True),
        "min_frames": _number(meta, "min_frames", "1", 0, _MAX_FRAMES, integer=True),
        "dynamic_time": meta.get("dynamic_time") == "true",
        "input_frames": _number(meta, "input_frames", "0", 0, _MAX_FRAMES, integer=True),
        "outputs": outputs, "frame_hop_s": _number(meta, "frame_hop_s", "null", 1e-4, 600.0, nullable=True),
        "provenance": _object(meta, "provenance", "{}"),
    }


def read_tag_labels(meta: dict[str, str]) -> list[str]:
    """The ``tag_labels`` of a graph with a ``tags`` output (a head and its taggers in one graph)."""
    return _strings(meta, "tag_labels", _MAX_LABELS)


def check_graph(inputs: dict[str, list], outputs: dict[str, list], *, output_names: list[str], n_classes: int,
                n_bins: int) -> None:
    """The graph's declared shapes (name -> shape, symbolic dimensions as strings) against the metadata."""
    if "features" not in inputs or any(n not in outputs for n in output_names):
        raise GenrescopeError(f"the graph's inputs {sorted(inputs)} and outputs {sorted(outputs)} are not "
                              f"'features' and {output_names}")
    shape = outputs["probabilities"] or [None]
    if isinstance(shape[-1], int) and shape[-1] != n_classes:
        raise GenrescopeError(f"{n_classes} labels for a graph with {shape[-1]} outputs")
    shape = inputs["features"]
    if len(shape) > 1 and isinstance(shape[1], int) and shape[1] != n_bins:
        raise GenrescopeError(f"n_bins is {n_bins} but the graph's input has {shape[1]}")
