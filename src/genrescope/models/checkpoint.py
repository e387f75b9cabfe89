"""Checkpoints that rebuild themselves, and the training state that ``--resume`` needs.

A checkpoint is ONE ``.safetensors`` file: the model's state dict as tensors, and in the
header's string-to-string metadata everything needed to rebuild and use it:

=====================  ==========================================================
key                    value
=====================  ==========================================================
``format``             ``"genrescope-checkpoint"``
``format_version``     ``"1"`` (:data:`FORMAT_VERSION`)
``genrescope_version`` the version that wrote it
``model_name``         registry name, e.g. ``"resnet-chunk"``
``model_config``       JSON of the model's config dataclass
``feature_config``     JSON of the :class:`~genrescope.config.FeatureConfig`
``labels``             JSON list of class names, index = output unit
``provenance``         JSON: ``dataset``, ``split``, ``metrics``, ``command``, ``created``
                       and any other ``extra`` keys (e.g. ``epoch``, ``train_config``)
``weights_sha256``     hash of every tensor (name, dtype, shape, bytes), to catch
                       damage that leaves the file's structure intact
=====================  ==========================================================

One file (rather than a folder) so a checkpoint can be copied, uploaded and
atomically replaced as a unit; safetensors, so loading never unpickles anything.
Writes go to a temporary file in the same folder and are moved into place with
``os.replace``, so a crash mid-write never leaves a half-written checkpoint.

The resumable training state (optimiser, scheduler, epoch counters, RNG states) is a
separate ``torch.save`` file of tensors and plain Python values, read back with
``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import json
import os
import random
import shlex
import struct
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from genrescope.version import __version__
from genrescope.config import FeatureConfig
from genrescope.errors import CheckpointError, GenrescopeError
from genrescope.models.weights_check import check_finite, check_state_dict, header_shapes, meta_shapes

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

FORMAT = "genrescope-checkpoint"
FORMAT_VERSION = 1
TRAINING_STATE_FORMAT = "genrescope-training-state"
PROVENANCE = ("dataset", "split", "metrics", "command", "created")
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit


# ---------------------------------------------------------------- helpers
def _json_default(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "item") and hasattr(obj, "numel") and obj.numel() == 1:  # a torch scalar
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def dumps_json(obj: Any, what: str) -> str:
    """JSON text of ``obj`` (numpy values, dataclasses and paths converted); CheckpointError if impossible."""
    try:
        return json.dumps(obj, default=_json_default, sort_keys=True, allow_nan=True)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"cannot store {what} in a checkpoint: {e}") from e


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path next to ``path``; on success fsync it and move it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def weights_hash(tensors: dict[str, "torch.Tensor"]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order."""
    import torch

    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())  # raw bytes of any dtype
    return h.hexdigest()


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON header of a safetensors file, checked against the file's size.

    Needs neither torch nor safetensors. Raises CheckpointError for a missing,
    truncated or malformed file.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such checkpoint file")
    size = p.stat().st_size
    with open(p, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{p}: not a checkpoint (file is {size} bytes, too short for a safetensors header)")
        (n,) = struct.unpack("<Q", head)
        if n > _MAX_HEADER or 8 + n > size:
            raise CheckpointError(f"{p}: corrupt or truncated checkpoint (header length {n}, file size {size})")
        try:
            header = json.loads(f.read(n).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise CheckpointError(f"{p}: corrupt checkpoint header ({e})") from e
    if not isinstance(header, dict):
        raise CheckpointError(f"{p}: corrupt checkpoint header (not a JSON object)")
    try:
        end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    except (TypeError, KeyError, ValueError, IndexError) as e:
        raise CheckpointError(f"{p}: corrupt checkpoint header (bad tensor entry)") from e
    if 8 + n + end != size:
        raise CheckpointError(f"{p}: truncated or damaged checkpoint: header describes {end} bytes of tensor data, "
                              f"the file holds {size - 8 - n}")
    return header


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint's metadata, decoded, without loading the weights (no torch needed).

    Returns
    -------
    dict
        ``format_version``, ``genrescope_version``, ``model_name``, ``model_config``
        (dict), ``feature_config`` (FeatureConfig), ``labels`` (list of str), the
        provenance keys (``dataset``, ``split``, ``metrics``, ``command``, ``created``)
        and every other ``extra`` key, and ``weights_sha256``.
    """
    meta = read_header(path).get("__metadata__") or {}
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a genrescope checkpoint (no {FORMAT!r} metadata)")
    try:
        version = int(meta.get("format_version", ""))
    except ValueError:
        raise CheckpointError(f"{path}: unreadable format version {meta.get('format_version')!r}") from None
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {version} was written by genrescope "
                              f"{meta.get('genrescope_version', '?')}; this genrescope ({__version__}) reads up to "
                              f"version {FORMAT_VERSION}. Upgrade genrescope.")
    if version < 1:
        raise CheckpointError(f"{path}: unsupported checkpoint format version {version}")
    try:
        info = json.loads(meta.get("provenance", "{}"))
        info.update(
            format_version=version, genrescope_version=meta.get("genrescope_version"),
            model_name=meta["model_name"], model_config=json.loads(meta["model_config"]),
            feature_config=FeatureConfig.from_dict(json.loads(meta["feature_config"])),
            labels=json.loads(meta["labels"]), weights_sha256=meta.get("weights_sha256"))
    except (KeyError, ValueError, TypeError, GenrescopeError) as e:
        raise CheckpointError(f"{path}: malformed checkpoint metadata ({type(e).__name__}: {e})") from e
    return info


# ---------------------------------------------------------------- save / load
def save_checkpoint(path: str | os.PathLike, model: "nn.Module", *, model_name: str,
                    feature_config: FeatureConfig | dict, labels: list[str], model_config: Any = None,
                    extra: dict | None = None, dataset: Any = None, split: Any = None, metrics: Any = None,
                    command: str | None = None) -> Path:
    """Write ``model`` and everything needed to rebuild it to one safetensors file, atomically.

    Parameters
    ----------
    path : path
        Destination, conventionally ``*.safetensors``; replaced if it exists.
    model : nn.Module
        A registry model (its ``config`` is stored unless ``model_config`` is given).
    model_name : str
        Its registry name.
    feature_config : FeatureConfig or dict
        The front end it was trained on; must agree with the model's n_bins and window.
    labels : list of str
        Class names, one per output unit.
    extra : dict, optional
        Provenance and anything else JSON-serialisable (``dataset``, ``split``,
        ``metrics``, ``command``, ``epoch``...); the keyword arguments of the same names
        take precedence. ``created`` (UTC) and ``command`` (``sys.argv``) are filled in.

    Returns
    -------
    Path
        ``path``.
    """
    from safetensors.torch import save_file

    from genrescope.models import check_features, config_to_dict, resolve

    resolve(model_name)  # fail now, not when someone tries to load it
    model_config = model_config if model_config is not None else getattr(model, "config", None)
    if model_config is None:
        raise CheckpointError(f"save_checkpoint: {type(model).__name__} has no config; pass model_config")
    cfg_dict = model_config if isinstance(model_config, dict) else config_to_dict(model_config)
    fc = feature_config if isinstance(feature_config, FeatureConfig) else FeatureConfig.from_dict(feature_config)
    labels = [str(x) for x in labels]
    n_classes = cfg_dict.get("n_classes")
    if n_classes is not None and len(labels) != n_classes:
        raise CheckpointError(f"save_checkpoint: {len(labels)} labels for a model with {n_classes} outputs")
    if not isinstance(model_config, dict):
        try:
            check_features(model_config, fc)
        except GenrescopeError as e:
            raise CheckpointError(f"save_checkpoint: {e}") from e
    provenance = dict(extra or {})
    for key, value in (("dataset", dataset), ("split", split), ("metrics", metrics), ("command", command)):
        if value is not None:
            provenance[key] = value
    provenance.setdefault("command", shlex.join(sys.argv))
    provenance.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    metadata = {
        "format": FORMAT, "format_version": str(FORMAT_VERSION), "genrescope_version": __version__,
        "model_name": model_name, "model_config": dumps_json(cfg_dict, "model_config"),
        "feature_config": dumps_json(fc.to_dict(), "feature_config"), "labels": dumps_json(labels, "labels"),
        "provenance": dumps_json(provenance, "extra/provenance"), "weights_sha256": weights_hash(tensors),
    }
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=metadata)
    return Path(path)


def load_checkpoint(path: str | os.PathLike, *, map_location: str = "cpu",
                    verify: bool = True) -> tuple["nn.Module", dict[str, Any]]:
    """Rebuild a model from a checkpoint alone.

    Parameters
    ----------
    path : path
        A file written by :func:`save_checkpoint`.
    map_location : str
        Device the weights are loaded to.
    verify : bool
        Check the weights hash (catches damage inside the tensor data).

    Returns
    -------
    model : nn.Module
        The model in eval mode, weights loaded strictly.
    info : dict
        :func:`read_metadata`'s dict, with ``model_config`` as the config object and
        ``path``.

    Raises
    ------
    CheckpointError
        Missing, truncated or corrupt file; not a genrescope checkpoint; a format version
        newer than this genrescope; unknown model name; weights that do not match.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from genrescope.models import build_model, config_from_dict

    info = read_metadata(path)
    name = info["model_name"]
    try:
        config = config_from_dict(name, info["model_config"])
    except GenrescopeError as e:
        raise CheckpointError(f"{path}: cannot rebuild the model: {e}") from e
    n_out = getattr(config, "n_classes", len(info["labels"]))
    if len(info["labels"]) != n_out:
        raise CheckpointError(f"{path}: {len(info['labels'])} labels for a model with {n_out} outputs")
    # the file is untrusted: its shapes are checked against a model built without memory
    # (on the meta device) before the real model, and its weights, exist
    check_state_dict(header_shapes(read_header(path), path), meta_shapes(name, config, path), where=str(path))
    try:
        state = load_file(os.fspath(path), device=map_location)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: cannot read the weights ({e})") from e
    if verify and info.get("weights_sha256") and weights_hash(state) != info["weights_sha256"]:
        raise CheckpointError(f"{path}: the weights are damaged (checksum mismatch)")
    check_finite(state, where=str(path))
    try:
        model = build_model(name, config)
    except GenrescopeError as e:
        raise CheckpointError(f"{path}: cannot rebuild the model: {e}") from e
    check_state_dict(state, model.state_dict(), where=str(path))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit the model: {e}") from e
    info.update(model_config=config, path=str(path))
    return model.to(map_location).eval(), info


# ---------------------------------------------------------------- training state
def rng_states() -> dict[str, Any]:
    """Python, NumPy (global) and torch (CPU and CUDA) RNG states as tensors and plain values."""
    import torch

    name, keys, pos, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what :func:`rng_states` returned."""
    import torch

    random.setstate(_tuplify(states["python"]))
    n = states["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _tuplify(x: Any) -> Any:
    return tuple(_tuplify(v) for v in x) if isinstance(x, (list, tuple)) else x


def save_training_state(path: str | os.PathLike, *, state: dict[str, Any], model: "nn.Module | None" = None,
                        optimizer: Any = None, scheduler: Any = None, scaler: Any = None,
                        rng: bool = True) -> Path:
    """Write what ``--resume`` needs, atomically, as a ``weights_only``-loadable torch file.

    Parameters
    ----------
    state : dict
        The loop's own counters (epoch, best score, history...): plain Python values.
    model, optimizer, scheduler, scaler : optional
        Objects whose ``state_dict()`` is stored.
    rng : bool
        Also store the Python, NumPy and torch RNG states.
    """
    import torch

    blob: dict[str, Any] = {"format": TRAINING_STATE_FORMAT, "format_version": FORMAT_VERSION,
                            "genrescope_version": __version__, "state": state}
    for key, obj in (("model", model), ("optimizer", optimizer), ("scheduler", scheduler), ("scaler", scaler)):
        if obj is not None:
            blob[key] = obj.state_dict()
    if rng:
        blob["rng"] = rng_states()
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)
    return Path(path)


def load_training_state(path: str | os.PathLike, *, model: "nn.Module | None" = None, optimizer: Any = None,
                        scheduler: Any = None, scaler: Any = None, restore_rng: bool = True,
                        map_location: str = "cpu") -> dict[str, Any]:
    """Restore a :func:`save_training_state` file into the given objects; returns ``state``.

    Loaded with ``torch.load(weights_only=True)``: tensors and plain values only.
    """
    import pickle

    import torch

    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such training-state file")
    try:
        blob = torch.load(p, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"{p}: corrupt or unsafe training-state file ({type(e).__name__}: {e})") from e
    if not isinstance(blob, dict) or blob.get("format") != TRAINING_STATE_FORMAT:
        raise CheckpointError(f"{p}: not a genrescope training-state file")
    if int(blob.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"{p}: training-state format {blob['format_version']} is newer than this genrescope "
                              f"reads ({FORMAT_VERSION})")
    loaders: list[tuple[str, Any, Callable]] = [
        ("model", model, lambda o, s: o.load_state_dict(s, strict=True)),
        ("optimizer", optimizer, lambda o, s: o.load_state_dict(s)),
        ("scheduler", scheduler, lambda o, s: o.load_state_dict(s)),
        ("scaler", scaler, lambda o, s: o.load_state_dict(s))]
    for key, obj, load in loaders:
        if obj is None:
            continue
        if key not in blob:
            raise CheckpointError(f"{p}: holds no {key} state")
        try:
            load(obj, blob[key])
        except (RuntimeError, ValueError, KeyError) as e:
            raise CheckpointError(f"{p}: the saved {key} state does not fit: {e}") from e
    if restore_rng and "rng" in blob:
        set_rng_states(blob["rng"])
    return blob["state"]


__all__ = ["FORMAT_VERSION", "save_checkpoint", "load_checkpoint", "read_metadata", "read_header",
           "save_training_state", "load_training_state", "rng_states", "set_rng_states", "atomic_path",
           "check_state_dict", "weights_hash"]
