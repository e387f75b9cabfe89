"""The interface every front end runs: :class:`InferenceModel`, whatever executes it."""
from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from genrescope.config import FeatureConfig

if TYPE_CHECKING:  # pragma: no cover
    from concurrent.futures import ThreadPoolExecutor


@dataclass
class InferenceModel:
    """What prediction needs from a model, whatever runs it.

    ``predict_windows`` maps (N, n_bins, T) windows (or (N, n_columns) table rows) to
    (N, G) probabilities. ``backend`` is the engine that runs it (``"onnxruntime"``,
    ``"openvino"`` or ``"torch"``) and ``precision`` the arithmetic it really runs
    (``"fp32"``, or ``"bf16"`` when any part of the model runs in bfloat16).
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
    backend: str = "onnxruntime"
    precision: str = "fp32"
    #: a head behind taggers also reports their tags: then ``predict_windows`` gives
    #: (N, len(labels) + len(tag_labels)), the model's own labels first, then the tags
    tag_labels: list[str] | None = None
    #: a head learnt on pooled rows (:mod:`genrescope.learn`): ``predict_windows`` also gives the
    #: backbone's rows, its last ``row_width`` columns, and ``predict_track`` maps a song's (N, D)
    #: rows to its (G,) track answer (the pooled features the head was learnt on)
    predict_track: Callable[[np.ndarray], np.ndarray] | None = None
    row_width: int = 0
    #: the same model's ``(track answer (G,), duration_s)`` from a file's cached backbone rows
    #: (``genrescope learn`` / ``embed`` filled the cache), or None when they are not cached
    cached_track: Callable[[str], tuple[np.ndarray, float] | None] | None = None
    #: calls of ``predict_windows`` that may run at once, each on one thread: a song's windows are
    #: spread over this many threads (:func:`predict_batches`). 1: one call at a time, each with
    #: the threads the model was loaded with
    workers: int = 1

    @property
    def genre_labels(self) -> list[str]:
        from genrescope.inference.taxonomy import genre_labels_of

        return genre_labels_of(self.labels, self.multi_label)


_POOLS: dict[int, "ThreadPoolExecutor"] = {}
_POOLS_LOCK = threading.Lock()


def predict_batches(model: InferenceModel, batches: list[np.ndarray]) -> list[np.ndarray]:
    """``model.predict_windows`` of each batch, in order, over ``model.workers`` threads.

    One window through a one-thread runtime call keeps one core busy at full speed; two such
    calls side by side use two cores better than one call on two threads (whose small
    convolutions split poorly): ``bench/predict.py`` measures both.
    """
    if model.workers <= 1 or len(batches) < 2:
        return [model.predict_windows(b) for b in batches]
    return list(model_pool(model.workers).map(model.predict_windows, batches))


def model_pool(workers: int) -> "ThreadPoolExecutor":
    """The process's pool of ``workers`` model-call threads (one per worker count, shared by every model)."""
    from concurrent.futures import ThreadPoolExecutor

    with _POOLS_LOCK:
        pool = _POOLS.get(workers)
        if pool is None:
            pool = _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="genrescope-model")
        return pool


def one_call_at_a_time(model: InferenceModel) -> InferenceModel:
    """The same model behind a lock: callers in several threads take turns, one call at a time.

    ``predict_files`` uses it to decode the next file while this one is in the model,
    without running two model calls on cores that one call already fills.
    """
    lock = threading.Lock()

    def gate(f):
        if f is None:
            return None

        def call(x: np.ndarray) -> np.ndarray:
            with lock:
                return f(x)

        return call

    return dataclasses.replace(model, predict_windows=gate(model.predict_windows),
                               predict_frames=gate(model.predict_frames), predict_track=gate(model.predict_track))
