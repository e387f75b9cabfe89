"""Backbone embeddings of whole datasets: ``genrescope embed``, and the training data
of heads (``genrescope train --backbone NAME``), cached by file content and backbone.

Each track is one call on the engines (:mod:`genrescope.engines`: local worker processes
or a Ray cluster): the worker loads the backbone once (one thread), reads or computes the
track's log-mel (the feature cache) and its window embeddings (the embedding cache), and
sends the embeddings back; this process keeps them in manifest order.
"""
from __future__ import annotations

import csv
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from genrescope.errors import GenrescopeError
from genrescope.inference.backbone import Backbone

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbedTask:
    """The engines' task of :func:`manifest_embeddings`: a track -> :func:`embed_file`."""

    backbone: str
    blocks: tuple[str, ...]
    cache_root: str | None
    isolate: ClassVar[bool] = True  # -j 1 too: the same one-thread worker, so the same float32 values

    def open(self, threads: int | None):
        from genrescope.features.cache import FeatureCache

        bb = Backbone(self.backbone, threads=threads, blocks=self.blocks)
        fcache = FeatureCache(self.cache_root, bb.feature_config, "log_mel")
        ecache = FeatureCache(self.cache_root, bb.feature_config, f"embed-{bb.name}")
        return lambda path: embed_file(path, bb, fcache, ecache)


def window_rows(path: str, backbone: Backbone, fcache=None) -> np.ndarray:
    """(N, 2 + D) float32 of one track: per window start_s, end_s and the embedding, computed
    from its log-mel (read from or stored in ``fcache``; None: computed, not cached). Raises
    GenrescopeError for unreadable audio."""
    if fcache is None:
        from genrescope.features.cache import compute_file

        feats, _ = compute_file(path, backbone.feature_config, "log_mel")
    else:
        feats = fcache.get(path)
    e, start, end = backbone.embed_features(feats)
    return np.concatenate([start[:, None], end[:, None], e], axis=1).astype(np.float32)


def embed_file(path: str, backbone: Backbone, fcache, ecache) -> np.ndarray:
    """:func:`window_rows` of one track, read from the embedding cache ``ecache`` or computed and stored."""
    return ecache.load_or_make(path, lambda: window_rows(path, backbone, fcache))


def manifest_embeddings(manifest, backbone: Backbone, *, cache_root=None, jobs: int = 0, progress: bool = True,
                        engine: str = "local", address: str | None = None
                        ) -> tuple[list, list[np.ndarray], list[np.ndarray], list[str]]:
    """Window embeddings of every readable track: (tracks, embeddings, window starts, failures).

    Everything in manifest order, whatever the engine. ``engine`` and ``jobs`` as
    :func:`genrescope.engines.map_files` takes them (``jobs`` 0: every core). On Ray the
    workers keep their caches under ``cache_root`` on their own machine (a shared mount
    shares them).
    """
    from genrescope.engines import map_files
    from genrescope.progress import Progress

    tracks = list(manifest.entries)
    root = None if cache_root is None else str(Path(cache_root).expanduser().absolute())
    task = EmbedTask(backbone.name, backbone.blocks, root)
    blobs: list = [None] * len(tracks)
    errors: dict[int, str] = {}
    bar = Progress(len(tracks), progress, what="embedding")
    try:
        for i, blob, err in map_files([str(t.path) for t in tracks], task, engine=engine, jobs=jobs, address=address):
            if err is None:
                blobs[i] = blob
            else:
                errors[i] = err
            bar.step()
    finally:
        bar.close()
    kept = [i for i in range(len(tracks)) if i not in errors]
    return ([tracks[i] for i in kept], [blobs[i][:, 2:] for i in kept], [blobs[i][:, :2] for i in kept],
            [m if str(tracks[i].path) in m else f"{tracks[i].path}: {m}" for i, m in sorted(errors.items())])


def train_data(manifest, backbone: Backbone, **kw):
    """TrainData of window-embedding rows (kind "table"), one (n_windows, D) array per track."""
    from genrescope.training.data import SPLITS, TrainData

    tracks, embs, _, failed = manifest_embeddings(manifest, backbone, **kw)
    for f in failed:
        log.warning("left out: %s", f)
    classes = list(manifest.labels)
    items = {s: [e for t, e in zip(tracks, embs) if t.split == s] for s in SPLITS}
    labels = {s: np.array([classes.index(t.label) for t in tracks if t.split == s], dtype=np.int64) for s in SPLITS}
    ids = {s: [t.track_id for t in tracks if t.split == s] for s in SPLITS}
    return TrainData(classes, "table", backbone.feature_config, items, labels, ids)


def write_embeddings(dataset: str | os.PathLike, backbone_name: str, out_dir: str | os.PathLike, *,
                     layout: str = "auto", split: str = "auto", seed: int = 0, fma_subset: str | None = None,
                     cache: str | None = None, jobs: int = 0, engine: str = "local", address: str | None = None,
                     parquet: bool = False, progress: bool = True) -> dict:
    """Window and track embeddings of a dataset's tracks written into ``out_dir`` (``genrescope embed``).

    Returns ``embeddings.json``'s content plus ``written`` (the file names) and ``out``.
    """
    from genrescope.datasets import load_dataset

    backbone = Backbone(backbone_name)
    manifest = load_dataset(dataset, layout=layout, split=split, seed=seed, fma_subset=fma_subset)
    tracks, embs, spans, failed = manifest_embeddings(manifest, backbone, cache_root=cache, jobs=jobs,
                                                      progress=progress, engine=engine, address=address)
    if not tracks:
        raise GenrescopeError(f"{dataset}: no readable tracks")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    win = np.concatenate(embs)
    track = np.stack([e.mean(axis=0) for e in embs])
    np.save(out / "windows.npy", win)
    np.save(out / "tracks.npy", track)
    with open(out / "windows.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["row", "track_id", "label", "split", "start_s", "end_s", "path"])
        row = 0
        for t, sp in zip(tracks, spans):
            for s, e in sp:
                w.writerow([row, t.track_id, t.label, t.split or "", f"{s:.3f}", f"{e:.3f}", t.path])
                row += 1
    with open(out / "tracks.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["row", "track_id", "label", "split", "artist", "n_windows", "path"])
        for i, (t, e) in enumerate(zip(tracks, embs)):
            w.writerow([i, t.track_id, t.label, t.split or "", t.artist or "", len(e), t.path])
    written = ["windows.npy", "windows.csv", "tracks.npy", "tracks.csv"]
    if parquet:
        written += _write_parquet(out, tracks, embs, spans, track)
    meta = {"backbone": backbone.name, "dim": int(win.shape[1]), "windows": int(len(win)), "tracks": len(tracks),
            "feature_config": backbone.feature_config.to_dict(), "failed": failed}
    (out / "embeddings.json").write_text(json.dumps(meta, indent=2))
    return {**meta, "written": written, "out": str(out)}


def _write_parquet(out: Path, tracks, embs, spans, track) -> list[str]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as e:
        raise GenrescopeError("--parquet needs pyarrow (pip install pyarrow)") from e
    rows = {"track_id": [], "label": [], "split": [], "start_s": [], "end_s": [], "embedding": []}
    for t, e, sp in zip(tracks, embs, spans):
        for (s, en), v in zip(sp, e):
            rows["track_id"].append(t.track_id)
            rows["label"].append(t.label)
            rows["split"].append(t.split)
            rows["start_s"].append(float(s))
            rows["end_s"].append(float(en))
            rows["embedding"].append(v.tolist())
    pq.write_table(pa.table(rows), out / "windows.parquet")
    pq.write_table(pa.table({"track_id": [t.track_id for t in tracks], "label": [t.label for t in tracks],
                             "split": [t.split for t in tracks], "embedding": [v.tolist() for v in track]}),
                   out / "tracks.parquet")
    return ["windows.parquet", "tracks.parquet"]
