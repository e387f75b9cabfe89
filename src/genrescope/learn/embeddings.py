"""What the learner sees of a file: the taggers' window embeddings, pooled over the song.

Each file goes through both musicnn taggers (the ``musicnn`` backbone, as ``genre10`` uses it):
one embedding row per model window, (N, D) with D = 2 x 200. The rows are kept in the
content-keyed embedding cache (:class:`~genrescope.features.cache.FeatureCache`, the same
entries ``genrescope embed`` writes), so a second ``learn`` after adding files costs only the new
files and ``tag`` with the learnt model reads the cached rows instead of decoding again.
The log-mel in between is not cached (a 4-minute song's log-mel is 50 times its embeddings).

A track's feature vector is :func:`pool`: the mean and the standard deviation of its window
rows, (2 D,).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from genrescope.progress import Progress

#: The backbone every learnt model stands on: both musicnn taggers' penultimate layers.
BACKBONE = "musicnn"
BLOCKS = ("embeddings",)


def pool(windows: np.ndarray) -> np.ndarray:
    """(N, D) window embeddings -> (2 D,) float32: their mean, then their standard deviation."""
    from genrescope.inference.backbone import pool_rows

    w = np.asarray(windows)
    if w.ndim != 2 or len(w) == 0:
        raise ValueError(f"pool: expected (n_windows >= 1, D) embeddings, got {w.shape}")
    return pool_rows(w)[0]  # the very function the learnt model's track answer pools with


def backbone_features() -> dict:
    """The :data:`BACKBONE`'s feature config (a dict) from its first tagger's shipped config.json,
    read without opening a model session."""
    import json

    from genrescope.inference.registry import ENSEMBLES, pretrained_root

    member = ENSEMBLES.get(BACKBONE, (BACKBONE,))[0]
    return json.loads((pretrained_root() / member / "config.json").read_text())["features"]


def embedding_cache(cache_root=None, backbone=None):
    """The content-keyed cache of window embeddings of ``backbone`` (default: :data:`BACKBONE`)."""
    from genrescope.config import FeatureConfig
    from genrescope.features.cache import FeatureCache

    cfg = backbone.feature_config if backbone is not None else FeatureConfig.from_dict(backbone_features())
    return FeatureCache(cache_root, cfg, f"embed-{BACKBONE}")


def cached_windows(path: str, cache_root=None) -> np.ndarray | None:
    """The cached (N, D) window embeddings of ``path``, or None when not cached yet."""
    blob = embedding_cache(cache_root).load(path)
    return None if blob is None else blob[:, 2:]


def file_windows(path: str, backbone, cache) -> tuple[np.ndarray, bool]:
    """((N, 2 + D) start_s, end_s and embedding per window, whether it was cached) of one file
    (:func:`genrescope.training.embed.window_rows`, its log-mel not cached).

    Raises GenrescopeError for unreadable audio.
    """
    from genrescope.training.embed import window_rows

    hit = [True]

    def make() -> np.ndarray:
        hit[0] = False
        return window_rows(path, backbone)

    return cache.load_or_make(path, make), hit[0]


@dataclass(frozen=True)
class WindowsTask:
    """The engines' task: a file -> ``(windows (N, 2 + D), cached?, seconds)``."""

    cache_root: str | None
    isolate: ClassVar[bool] = True  # the same one-thread worker whatever -j: the same float32 values

    def open(self, threads: int | None):
        from genrescope.inference.backbone import Backbone

        bb = Backbone(BACKBONE, threads=threads, blocks=BLOCKS)
        cache = embedding_cache(self.cache_root, bb)

        def one(path: str):
            t0 = time.perf_counter()
            rows, hit = file_windows(path, bb, cache)
            return rows, hit, time.perf_counter() - t0

        return one


@dataclass
class Embeddings:
    """Window embeddings of many files.

    Attributes
    ----------
    windows : dict
        path -> (N, D) float32 window embeddings (readable files only).
    failed : dict
        path -> why it could not be read.
    cached : int
        Files read from the cache.
    seconds : float
        Wall time of the whole run.
    compute_seconds : list of float
        Per computed (not cached) file, the seconds its worker spent.
    """

    windows: dict[str, np.ndarray] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    cached: int = 0
    seconds: float = 0.0
    compute_seconds: list[float] = field(default_factory=list)

    @property
    def per_file_s(self) -> float:
        """Mean worker seconds per computed file (0 when all came from the cache)."""
        return float(np.mean(self.compute_seconds)) if self.compute_seconds else 0.0


def embed_files(paths: list[str], *, cache_root=None, jobs: int = 0, progress: bool = True) -> Embeddings:
    """Window embeddings of every file (read from the cache, else computed and stored).

    ``jobs`` worker processes (0: every core), as :func:`genrescope.engines.map_files` runs them.
    A file that cannot be decoded lands in ``failed`` with its message.
    """
    from genrescope.engines import map_files

    out = Embeddings()
    t0 = time.perf_counter()
    bar = Progress(len(paths), progress, what="embedding", every=25)
    root = None if cache_root is None else str(cache_root)
    for i, res, err in map_files(list(paths), WindowsTask(root), jobs=jobs):
        if err is not None:
            out.failed[paths[i]] = err if paths[i] in err else f"{paths[i]}: {err}"
        else:
            rows, hit, secs = res
            out.windows[paths[i]] = rows[:, 2:]
            out.cached += int(hit)
            if not hit:
                out.compute_seconds.append(secs)
        bar.step(note=f"{out.per_file_s:.2f} s/file")
    bar.close()
    out.seconds = time.perf_counter() - t0
    return out
