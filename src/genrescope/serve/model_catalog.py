"""The models the server offers, loaded on first use; at most ``max_models`` stay loaded.

A client names a model by an id from :meth:`ModelCatalog.entries`, never by a path: the
shipped models by name, the files of ``--model-dir`` by their path inside that folder.
Anything else is unknown (404), so a request cannot make the server open a file of its
choosing.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from genrescope.errors import GenrescopeError

log = logging.getLogger(__name__)


class UnknownModelError(GenrescopeError):
    """A model id the server does not offer."""


@dataclass(frozen=True)
class ModelEntry:
    """One model on offer: ``id`` is what clients send, ``source`` what the registry loads."""

    id: str
    name: str
    origin: str  # "default", "shipped" or "model-dir"
    source: str

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "origin": self.origin}


def _scan_model_dir(model_dir: Path, runtime: str) -> list[ModelEntry]:
    from genrescope.inference.registry import is_learnt_dir, resolve_model_path

    if not model_dir.is_dir():
        raise GenrescopeError(f"--model-dir {model_dir}: not a folder")
    found = sorted(p for p in model_dir.rglob("*.onnx") if p.is_file())
    if runtime == "torch":  # then checkpoints are what the runtime loads
        found = sorted(p for p in model_dir.rglob("*.safetensors") if p.is_file())
    out = []
    for p in found:
        if p.name == "track.onnx" and is_learnt_dir(p.parent):
            continue  # a learnt model's second graph: the folder is one model, listed by model.onnx
        rel = p.relative_to(model_dir).as_posix()
        name, _ = resolve_model_path(p, runtime)
        out.append(ModelEntry(rel, name, "model-dir", str(p)))
    return out


class ModelCatalog:
    """Model ids on offer and a bounded cache of loaded predictors.

    Each model is loaded once while it stays in the cache; past ``max_models`` the least
    recently used one other than the default is dropped (a job still running on it keeps
    its reference), so clients naming every model in ``--model-dir`` cannot fill the memory.

    Parameters
    ----------
    default : str
        The model the page starts with: ``"default"``, a shipped name or a ``model_dir`` id.
    model_dir : Path or None
        Folder of extra ONNX exports (or checkpoints with ``runtime="torch"``).
    runtime : str
        Inference runtime of every model.
    threads : int
        Threads of one model call: the cores shared out among the worker pool's jobs, so
        that parallel jobs do not oversubscribe the cores.
    max_models : int
        Loaded models kept at once (the default counts).
    backend, precision : str
        How the ONNX exports run (:mod:`genrescope.inference.backends`).
    """

    def __init__(self, default: str = "default", model_dir: Path | None = None, *, runtime: str = "onnx",
                 threads: int | None = None, max_models: int = 4, backend: str = "auto",
                 precision: str = "auto"):
        from genrescope.inference.backends import check_backend
        from genrescope.inference.registry import DEFAULT_MODEL, pretrained_names

        check_backend(backend, precision)
        self.runtime, self.threads = runtime, threads
        self.backend, self.precision = backend, precision
        entries = [ModelEntry("default", f"{DEFAULT_MODEL} (default)", "default", "default")]
        entries += [ModelEntry(n, n, "shipped", n) for n in pretrained_names()]
        if model_dir is not None:
            entries += _scan_model_dir(Path(model_dir), runtime)
        self._entries = {e.id: e for e in entries}
        if default not in self._entries:
            raise UnknownModelError(f"--model {default!r} is not on offer; choose one of: {', '.join(self._entries)}")
        self.default = default
        self.max_models = max(1, max_models)
        self._loaded: OrderedDict[str, object] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {e: threading.Lock() for e in self._entries}

    def entries(self) -> list[ModelEntry]:
        return list(self._entries.values())

    def resolve(self, model_id: str | None) -> ModelEntry:
        """The entry for ``model_id`` (None or "" means the default); raises UnknownModelError."""
        key = model_id or self.default
        try:
            return self._entries[key]
        except KeyError:
            raise UnknownModelError(f"unknown model {key!r}; GET /api/models lists the models on offer") from None

    def is_loaded(self, model_id: str) -> bool:
        return model_id in self._loaded

    def get(self, model_id: str | None):
        """The loaded :class:`~genrescope.inference.predict.Predictor` (blocking: call it from a worker thread)."""
        from genrescope.inference.predict import Predictor

        entry = self.resolve(model_id)
        pred = self._cached(entry.id)
        if pred is not None:
            return pred
        with self._locks[entry.id]:  # a second caller waits for the first load instead of loading again
            pred = self._cached(entry.id)
            if pred is None:
                pred = Predictor(entry.source, runtime=self.runtime, threads=self.threads, backend=self.backend,
                                 precision=self.precision)
                log.info("loaded model %s in %.2f s", entry.id, pred.load_seconds)
                self._store(entry.id, pred)
        return pred

    def _cached(self, model_id: str):
        with self._cache_lock:
            pred = self._loaded.get(model_id)
            if pred is not None:
                self._loaded.move_to_end(model_id)
            return pred

    def _store(self, model_id: str, pred) -> None:
        with self._cache_lock:
            self._loaded[model_id] = pred
            for old in [k for k in self._loaded if k != self.default][:max(0, len(self._loaded) - self.max_models)]:
                del self._loaded[old]
                log.info("dropped model %s (at most %d stay loaded)", old, self.max_models)

    def describe(self, model_id: str | None) -> dict:
        """What the page needs to know about a model (loads it)."""
        entry = self.resolve(model_id)
        pred = self.get(entry.id)
        m = pred.model
        cfg = m.feature_config
        if m.kind == "table":
            win, hop = cfg.window_s, cfg.window_hop_s
        elif m.window_frames is None and getattr(m, "frame_hop_s", None):  # whole-song model: a row per hop
            win = hop = m.frame_hop_s
        else:
            win, hop = m.window_frames / cfg.frame_rate, cfg.window_hop_frames / cfg.frame_rate
        return {**entry.to_dict(), "model": m.name, "labels": list(m.labels), "genre_labels": m.genre_labels,
                "multi_label": m.multi_label, "input": m.kind, "sr": cfg.sr, "window_s": round(win, 4),
                "window_hop_s": round(hop, 4), "runtime": m.runtime, "backend": m.backend, "precision": m.precision}
