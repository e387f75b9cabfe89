"""A learnt model on disk: a folder any ``--model`` takes, like a shipped model's.

::

    DIR/
      config.json   labels, thresholds, the head's choice, provenance (library, label source,
                    tracks per label, rare and dropped labels, CV figures, date, version)
      model.onnx    the window head: a window's embedding row (D,) -> its belief (G,)
      track.onnx    the track head: the song's pooled row (2 D,) -> the track answer (G,)
      head.npz      the head's arrays (standardisation, weights, landmarks), for refitting tools

Both graphs carry genrescope ONNX metadata naming the ``musicnn`` backbone, so the runtime
composes them behind both taggers (:mod:`genrescope.inference.runtimes`). The head was
learnt on pooled features (the mean and the standard deviation of the windows' rows), so:

* the **track answer** is ``track.onnx`` on the pooled rows of the song's windows: exactly
  what the learner saw;
* a **window's belief** (the timeline) is the same head with that window's row as the mean
  and the spread held at the library's average (its standardised value 0); folded into
  ``model.onnx``, so every consumer of a window head (the web page too) reads it.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path

import numpy as np

from genrescope.version import __version__
from genrescope.errors import CheckpointError
from genrescope.learn import onnx_head
from genrescope.learn.learner import Head

CONFIG = "config.json"
WINDOW_GRAPH = "model.onnx"
TRACK_GRAPH = "track.onnx"
ARRAYS = "head.npz"
KIND = "learnt"


def _graphs(head: Head, dim: int) -> tuple[tuple, tuple]:
    """((window weights...), (track weights...)) of the head; ``dim`` = D, the window row width."""
    if head.kind == "linear":
        w = head.weight / head.scale[:, None]
        b = head.bias - (head.mean / head.scale) @ head.weight
        # window: the spread block at its mean (z = 0) adds nothing, so only the mean block's rows
        wb = head.bias - (head.mean[:dim] / head.scale[:dim]) @ head.weight[:dim]
        return (w[:dim], wb), (w, b)
    lm = head.landmarks
    spread = np.exp(-head.gamma * (lm[:, dim:] ** 2).sum(1))  # the kernel's factor from the spread block at z = 0
    window = (head.mean[:dim], 1 / head.scale[:dim], lm[:, :dim], head.gamma, head.weight * spread[:, None], head.bias)
    return window, (head.mean, 1 / head.scale, lm, head.gamma, head.weight, head.bias)


def _metadata(name: str, labels: list[str], n_in: int, feature_config: dict, window_s: float,
              provenance: dict) -> dict[str, str]:
    return {"format": "genrescope-onnx", "format_version": "1", "genrescope_version": __version__,
            "model_name": name, "model_config": json.dumps({"kind": "table", "n_bins": n_in, "head": KIND}),
            "feature_config": json.dumps(feature_config, sort_keys=True), "labels": json.dumps(labels),
            "input_kind": "table", "n_bins": str(n_in), "window_s": json.dumps(window_s), "min_frames": "1",
            "dynamic_time": "false", "input_frames": "0", "outputs": json.dumps(["probabilities"]),
            "output_activation": "softmax", "provenance": json.dumps(provenance, sort_keys=True)}


def save_model(out: str | os.PathLike, head: Head, labels: list[str], *, feature_config: dict, window_s: float,
               dim: int, thresholds: list[float | None], info: dict) -> Path:
    """Write the model folder ``out`` (created; files replaced) and return it.

    Parameters
    ----------
    head : Head
        The fitted head on pooled (2 ``dim``,) rows.
    labels : list of str
        The G labels in the head's order.
    feature_config, window_s
        The backbone's :class:`~genrescope.config.FeatureConfig` (as a dict) and window length.
    dim : int
        D, the width of one window's embedding row.
    thresholds : list
        Per label, the confidence to write it at (None: never).
    info : dict
        Provenance and figures to keep in ``config.json`` (library, counts, cv, ...).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = out.name or "learnt"
    prov = {"backbone": "musicnn", "backbone_blocks": ["embeddings"], "pooling": "mean+std", "learnt": True}
    window, track = _graphs(head, dim)
    graphs = {WINDOW_GRAPH: (window, dim), TRACK_GRAPH: (track, 2 * dim)}
    for fname, (params, n_in) in graphs.items():
        meta = _metadata(name, labels, n_in, feature_config, window_s, {**prov, "graph": fname})
        data = onnx_head.linear_graph(*params, meta) if head.kind == "linear" else onnx_head.rbf_graph(*params, meta)
        _write(out / fname, data)
    arrays = {"mean": head.mean, "scale": head.scale, "weight": head.weight, "bias": head.bias,
              "gamma": np.array(head.gamma)}
    if head.landmarks is not None:
        arrays["landmarks"] = head.landmarks
    tmp = out / f".{ARRAYS}.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, out / ARRAYS)
    config = {"name": name, "kind": KIND, "labels": labels, "backbone": "musicnn", "backbone_blocks": ["embeddings"],
              "pooling": "mean+std", "head": head.config,
              "thresholds": {lab: t for lab, t in zip(labels, thresholds)},
              "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
              "genrescope_version": __version__, **info}
    _write(out / CONFIG, (json.dumps(config, indent=2, ensure_ascii=False) + "\n").encode())
    return out


def _write(dest: Path, data: bytes) -> None:
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, dest)


def read_config(path: str | os.PathLike) -> dict:
    """The ``config.json`` of a learnt model folder (labels, thresholds, provenance).

    Raises
    ------
    CheckpointError
        ``path`` is not a learnt model folder or its config is unreadable.
    """
    p = Path(path)
    try:
        cfg = json.loads((p / CONFIG).read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{p}: not a learnt model folder ({e})") from e
    if cfg.get("kind") != KIND or not isinstance(cfg.get("labels"), list):
        raise CheckpointError(f"{p}: {CONFIG} does not describe a learnt model")
    return cfg


def load_head(path: str | os.PathLike) -> tuple[Head, list[str]]:
    """The head (numpy) and labels of a learnt model folder, e.g. to score pooled rows directly."""
    p = Path(path)
    cfg = read_config(p)
    try:
        with np.load(p / ARRAYS, allow_pickle=False) as a:
            head = Head(cfg["head"]["kind"], a["mean"], a["scale"], a["weight"], a["bias"],
                        a["landmarks"] if "landmarks" in a else None, float(a["gamma"]), dict(cfg["head"]))
    except (OSError, KeyError, ValueError) as e:
        raise CheckpointError(f"{p / ARRAYS}: cannot read the head's arrays ({e})") from e
    return head, list(cfg["labels"])
