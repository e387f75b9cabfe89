"""Model names: the shipped models, their provenance, and name-or-path resolution.

Wherever a checkpoint path is accepted, a shipped model's name works too
(``genrescope models --pretrained`` lists them). Loading for inference is
:mod:`genrescope.inference.runtimes`.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from genrescope.config import pretrained_dir
from genrescope.errors import CheckpointError

#: The model ``genrescope predict`` uses when none is named.
DEFAULT_MODEL = "genre10"

#: Shipped ensembles: name -> members run on the same windows. Their labels are the union
#: of the members' labels; a label two members share gets the mean of their probabilities.
#: Each ships as one graph (``pretrained/<name>/model.onnx``, training/fused_export.py); the
#: members are named here for what reads them one by one (a backbone's per-tagger blocks).
ENSEMBLES = {"musicnn": ("musicnn-msd", "musicnn-mtt")}


#: Environment variable naming the folder of learnt models (``genrescope learn``).
MODELS_ENV = "GENRESCOPE_MODELS"


def learnt_models_root() -> Path:
    """Where ``genrescope learn`` keeps models by default and ``--model NAME`` finds them:
    ``$GENRESCOPE_MODELS``, else ``$XDG_DATA_HOME/genrescope/models`` (``~/.local/share/...``)."""
    env = os.environ.get(MODELS_ENV)
    if env:
        return Path(env).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data).expanduser() / "genrescope" / "models"


def learnt_model_names() -> list[str]:
    """Names of the learnt model folders in :func:`learnt_models_root` (each usable as ``--model NAME``)."""
    root = learnt_models_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "model.onnx").is_file() and (p / "config.json").is_file())


def pretrained_root() -> Path:
    return pretrained_dir()


def pretrained_names() -> list[str]:
    """Names of the models shipped inside the package."""
    root = pretrained_root()
    if not root.is_dir():
        return []
    files = sorted(p.name for p in root.iterdir() if (p / "model.onnx").is_file())
    return sorted(set(files + [e for e, members in ENSEMBLES.items() if all(m in files for m in members)]))


def is_fused(name: str) -> bool:
    """True when the shipped ensemble ``name`` ships as one graph (then it runs as one model)."""
    return (pretrained_root() / name / "model.onnx").is_file()


def pretrained_info(name: str) -> dict:
    """The shipped model's ``config.json`` (provenance, licence, labels, metrics)."""
    if name in ENSEMBLES and not (pretrained_root() / name / "config.json").is_file():
        return {"name": name, "ensemble": list(ENSEMBLES[name]),
                "description": "the mean of the members' tag probabilities, label by label"}
    path = pretrained_root() / name / "config.json"
    if not path.is_file():
        raise CheckpointError(f"no shipped model named {name!r}; shipped: {', '.join(pretrained_names()) or 'none'}")
    return json.loads(path.read_text())


#: The files a model can be given as.
MODEL_SUFFIXES = (".onnx", ".safetensors")


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
    if p.is_file() and p.name in ("model.onnx", "track.onnx") and is_learnt_dir(p.parent):
        return resolve_model_path(p.parent, runtime)  # either graph of a learnt model: the whole model
    if p.is_file():
        if p.suffix.lower() not in MODEL_SUFFIXES:
            raise CheckpointError(f"{p}: not a model file: a model is a .onnx or .safetensors file, a training "
                                  f"run's folder or a shipped name ({', '.join(pretrained_names())})")
        if runtime == "onnx" and p.suffix == ".safetensors":
            onnx = p.with_suffix(".onnx")
            if onnx.is_file():
                return _display_name(p), onnx
            raise CheckpointError(f"{p}: no ONNX export beside this checkpoint; run `genrescope export {p}` "
                                  f"or use --runtime torch")
        return _display_name(p), p
    if p.is_dir() and (p / "best.safetensors").is_file():
        return resolve_model_path(p / "best.safetensors", runtime)
    if p.is_dir() and (p / "model.onnx").is_file():  # a model folder (``genrescope learn --out DIR``)
        if runtime == "torch":
            raise CheckpointError(f"{p}: a learnt model runs on ONNX only; use --runtime onnx")
        return p.resolve().name, p / "model.onnx"
    if os.sep not in s and "/" not in s and s in learnt_model_names():  # a learnt model by name
        return resolve_model_path(learnt_models_root() / s, runtime)
    raise CheckpointError(f"{s}: not a file and not a shipped model (shipped: {', '.join(pretrained_names())})")


def is_learnt_dir(d: Path) -> bool:
    """A model folder written by ``genrescope learn`` (window and track graphs, config.json)."""
    if not ((d / "model.onnx").is_file() and (d / "track.onnx").is_file()):
        return False
    try:
        return json.loads((d / "config.json").read_text()).get("kind") == "learnt"
    except (OSError, ValueError, AttributeError):
        return False


def _display_name(p: Path) -> str:
    """``run/best`` for a training run's files, else the file's stem."""
    return f"{p.parent.name}/{p.stem}" if p.stem in ("best", "last") and p.parent.name else p.stem


