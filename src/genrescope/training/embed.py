"""Backbone embeddings of whole datasets: ``genrescope embed``, and the training data
of heads (``genrescope train --backbone NAME``), cached by file content and backbone.
"""
from __future__ import annotations

import csv
import json
import logging
import sys
from pathlib import Path

import numpy as np

from genrescope.errors import GenrescopeError
from genrescope.inference.backbone import Backbone

log = logging.getLogger(__name__)


def manifest_embeddings(manifest, backbone: Backbone, *, cache_root=None, jobs: int = 0, progress: bool = True
                        ) -> tuple[list, list[np.ndarray], list[np.ndarray], list[str]]:
    """Window embeddings of every readable track: (tracks, embeddings, window starts, failures).

    Log-mel features come from the feature cache (parallel, resumable); embeddings are
    cached beside them, keyed by file content and backbone.
    """
    from genrescope.features.cache import FeatureCache, extract_many

    tracks = list(manifest.entries)
    fcache = FeatureCache(cache_root, backbone.feature_config, "log_mel")
    report = extract_many([t.path for t in tracks], fcache, jobs=jobs, progress=progress)
    ecache = FeatureCache(cache_root, backbone.feature_config, f"embed-{backbone.name}")
    failed = {p: msg for p, msg in report.failed}
    kept, embs, starts = [], [], []
    for t in tracks:
        if str(t.path) in failed:
            continue
        dest = ecache.path_for(t.path)
        if dest.is_file():
            blob = np.load(dest)
        else:
            e, start, end = backbone.embed_features(np.load(report.entries[str(t.path)]))
            blob = np.concatenate([start[:, None], end[:, None], e], axis=1).astype(np.float32)
            ecache.store(dest, blob)
        kept.append(t)
        starts.append(blob[:, :2])
        embs.append(blob[:, 2:])
    return kept, embs, starts, [f"{p}: {m}" for p, m in failed.items()]


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


def run_embed(args) -> int:
    """``genrescope embed``: window and track embeddings of a dataset (or of files)."""
    from genrescope.datasets import load_dataset

    backbone = Backbone(args.backbone)
    manifest = load_dataset(args.dataset, layout=args.layout, split=args.split, seed=args.seed)
    tracks, embs, spans, failed = manifest_embeddings(manifest, backbone, cache_root=args.cache, jobs=args.jobs,
                                                      progress=not args.no_progress)
    if not tracks:
        raise GenrescopeError(f"{args.dataset}: no readable tracks")
    out = Path(args.out)
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
    if args.parquet:
        written += _write_parquet(out, tracks, embs, spans, track)
    meta = {"backbone": backbone.name, "dim": int(win.shape[1]), "windows": int(len(win)), "tracks": len(tracks),
            "feature_config": backbone.feature_config.to_dict(), "failed": failed}
    (out / "embeddings.json").write_text(json.dumps(meta, indent=2))
    print(f"{len(tracks)} tracks, {len(win)} windows, {win.shape[1]}-d {backbone.name} embeddings -> {out}/ "
          f"({', '.join(written)})")
    for f in failed:
        print(f"unreadable: {f}", file=sys.stderr)
    return 1 if failed else 0


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
