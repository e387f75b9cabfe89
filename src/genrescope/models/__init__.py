"""The model zoo: a registry from names to model classes and their presets.

Importing this package is cheap (no torch): family modules are imported only when a
model of theirs is asked for. A family module (``genrescope.models.<family>``) exposes

* ``MODELS``: ``{name: ModelClass}`` or ``{name: (ModelClass, {config field: preset value})}``;
  ``ModelClass.Config`` is its frozen config dataclass and ``ModelClass(config)`` builds it;
* optionally ``FEATURES``: ``{name: FeatureConfig}``, the front end the model is meant for
  (default :data:`genrescope.config.DEFAULT_FEATURES`).

Several names may share one class with different presets (``cnn-lstm`` / ``cnn-gru``).

A module without ``MODELS`` but with ``ARCHITECTURES`` (``{"musicnn_vgg": cls}``, name with
``_`` for ``-``) is accepted too; such classes take keyword arguments instead of a config
and are listed and built, but checkpoints and ONNX export need the config protocol.
"""
from __future__ import annotations

import dataclasses
import importlib
import logging
import math
from typing import TYPE_CHECKING, Any, NamedTuple

from genrescope.config import DEFAULT_FEATURES, FeatureConfig
from genrescope.errors import GenrescopeError

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

log = logging.getLogger(__name__)

#: name -> module that defines it. Order is the order ``genrescope models`` prints.
REGISTRY: dict[str, str] = {
    "parallel-cnn-bigru": "genrescope.models.parallel",
    "cnn-lstm": "genrescope.models.crnn",
    "cnn-gru": "genrescope.models.crnn",
    "mfcc-cnn": "genrescope.models.mfcc_cnn",
    "features-mlp": "genrescope.models.mlp",
    "timeline-cnn": "genrescope.models.timeline_cnn",
    "parallel-cnn-bilstm": "genrescope.models.parallel",
    "resnet-chunk": "genrescope.models.resnet",
    "musicnn": "genrescope.models.musicnn",
    "musicnn-vgg": "genrescope.models.musicnn",
    "musicnn-finetune": "genrescope.models.musicnn",
}

#: Names whose module ships with this file; the others may be absent from an install.
BUILTIN = tuple(n for n, m in REGISTRY.items() if not m.endswith(".musicnn"))


class ModelSummary(NamedTuple):
    name: str
    cls: type
    n_params: int
    kind: str
    n_bins: int | None  # None: the class does not declare its input (no config protocol)
    window_s: float | None
    frames: bool  # has forward_frames


def model_names() -> list[str]:
    """Every registered name, available or not."""
    return list(REGISTRY)


def _family(name: str):
    if name not in REGISTRY:
        raise GenrescopeError(f"unknown model {name!r}; known models: {', '.join(REGISTRY)}")
    module = REGISTRY[name]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is not None and module.startswith(e.name):
            raise GenrescopeError(f"model {name!r} needs {module}, which is not available here") from e
        raise GenrescopeError(f"model {name!r}: importing {module} failed: {e}") from e


def resolve(name: str) -> tuple[type, dict[str, Any]]:
    """The class registered under ``name`` and its preset config values."""
    family = _family(name)
    entry = getattr(family, "MODELS", {}).get(name)
    if entry is None:
        entry = getattr(family, "ARCHITECTURES", {}).get(name.replace("-", "_"))
    if entry is None:
        raise GenrescopeError(f"model {name!r}: {REGISTRY[name]} does not register it in MODELS")
    cls, preset = entry if isinstance(entry, tuple) else (entry, {})
    return cls, dict(preset)


def is_available(name: str) -> bool:
    try:
        resolve(name)
    except GenrescopeError:
        return False
    return True


def default_features(name: str) -> FeatureConfig:
    """The feature config a model is meant for (its family's ``FEATURES``, else the default)."""
    return getattr(_family(name), "FEATURES", {}).get(name, DEFAULT_FEATURES)


def _fields(cfg_cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cfg_cls)}


def default_config(name: str, *, feature_config: FeatureConfig | None = None, n_classes: int = 10,
                   **overrides: Any):
    """The config of model ``name`` for a feature config.

    ``n_bins`` follows the feature config (``features.n_bins``) and so does ``window_s``,
    unless the model reads whole songs (``window_s=None``) or either is overridden.
    """
    from genrescope.features.spectrogram import n_bins as feature_bins

    cls, preset = resolve(name)
    if not hasattr(cls, "Config"):
        raise GenrescopeError(f"model {name!r} ({cls.__name__}) takes keyword arguments, not a config")
    fc = feature_config or default_features(name)
    fields = _fields(cls.Config)
    kw = {**preset, **overrides}
    if "n_classes" in fields:
        kw["n_classes"] = n_classes
    kind = kw.get("kind", fields["kind"].default if "kind" in fields else None)
    if "n_bins" in fields and "n_bins" not in overrides and kind in ("log_mel", "mfcc", "stft"):
        kw["n_bins"] = feature_bins(fc, kind)
    if "window_s" in fields and "window_s" not in overrides:
        if kw.get("window_s", fields["window_s"].default) is not None:
            kw["window_s"] = fc.window_s
    try:
        return cls.Config(**kw)
    except TypeError as e:
        raise GenrescopeError(f"model {name!r}: bad config values: {e}") from e


def config_from_dict(name: str, d: dict[str, Any]):
    """Rebuild model ``name``'s config from its ``to_dict()`` (e.g. read from a checkpoint)."""
    cls, _ = resolve(name)
    if hasattr(cls.Config, "from_dict"):
        return cls.Config.from_dict(d)
    return cls.Config(**d)


def config_to_dict(config: Any) -> dict[str, Any]:
    return config.to_dict() if hasattr(config, "to_dict") else dataclasses.asdict(config)


def build_model(name: str, config: Any = None, *, feature_config: FeatureConfig | None = None, n_classes: int = 10,
                seed: int | None = None, **overrides: Any) -> "nn.Module":
    """Build model ``name``.

    Parameters
    ----------
    name : str
        A registered name (see :func:`model_names`).
    config : ModelConfig or dict, optional
        A full config; if None, :func:`default_config` with ``feature_config``,
        ``n_classes`` and ``overrides``.
    seed : int, optional
        Initialise the weights from this seed without touching the global RNG state.
    """
    import torch

    cls, _ = resolve(name)
    if not hasattr(cls, "Config"):  # a keyword-argument class (see the module docstring)
        kwargs = {"n_classes": n_classes, **overrides, **(config or {})}
        make = lambda: cls(**kwargs)  # noqa: E731
    else:
        if config is None:
            config = default_config(name, feature_config=feature_config, n_classes=n_classes, **overrides)
        elif isinstance(config, dict):
            config = config_from_dict(name, config)
        make = lambda: cls(config)  # noqa: E731
    if seed is None:
        return make()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


def check_features(model_config: Any, feature_config: FeatureConfig) -> None:
    """Raise GenrescopeError if a model config does not fit a feature config."""
    from genrescope.features.spectrogram import n_bins as feature_bins

    kind = getattr(model_config, "kind", None)
    if kind in ("log_mel", "mfcc", "stft") and hasattr(model_config, "n_bins"):
        want = feature_bins(feature_config, kind)
        if model_config.n_bins != want:
            raise GenrescopeError(f"model expects {model_config.n_bins} {kind} bins, the feature config gives {want}")
    ws = getattr(model_config, "window_s", None)
    if ws is not None and not math.isclose(ws, feature_config.window_s, rel_tol=1e-6):
        raise GenrescopeError(f"model window_s={ws} differs from the feature config's window_s="
                              f"{feature_config.window_s}")


def n_params(model: "nn.Module") -> int:
    return sum(p.numel() for p in model.parameters())


def list_models(*, n_classes: int = 10, feature_config: FeatureConfig | None = None) -> list[ModelSummary]:
    """Every available model with its parameter count for ``n_classes`` and the default
    features (each model's own ``default_features`` unless ``feature_config`` is given).
    Names whose module is not installed are left out (logged)."""
    rows = []
    for name in REGISTRY:
        if not is_available(name):
            log.info("model %s is not available (module %s)", name, REGISTRY[name])
            continue
        model = build_model(name, feature_config=feature_config, n_classes=n_classes)
        cfg = getattr(model, "config", None)
        rows.append(ModelSummary(name, type(model), n_params(model), getattr(cfg, "kind", "?"),
                                 getattr(cfg, "n_bins", None), getattr(cfg, "window_s", None),
                                 hasattr(model, "forward_frames")))
    return rows


__all__ = ["REGISTRY", "BUILTIN", "ModelSummary", "model_names", "resolve", "is_available", "default_features",
           "default_config", "config_from_dict", "config_to_dict", "build_model", "check_features", "list_models",
           "n_params"]
