"""What the training loop eats: per-track feature arrays (or table rows) with labels and splits.

Spectrograms are computed once per track through the feature cache and kept whole;
windows are slices of them, so windows of one track never straddle splits (the split is
a property of the track).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from genrescope.config import FeatureConfig
from genrescope.errors import DatasetError
from genrescope.features.windows import slice_windows, window_starts

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")


@dataclass
class TrainData:
    """Labelled inputs of every split.

    ``items[split]`` holds, per track, a (n_bins, n_frames) float32 array (spectrogram
    kinds), or for ``kind == "table"`` one (n_bins,) row or an (n_windows, n_bins) stack
    of rows (e.g. backbone embeddings of each window); ``labels[split]`` the class indices.
    """

    classes: list[str]
    kind: str
    feature_config: FeatureConfig
    items: dict[str, list[np.ndarray]]
    labels: dict[str, np.ndarray]
    track_ids: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.items.get("train"):
            raise DatasetError("no training tracks: the split has an empty 'train' side")
        if not self.items.get("valid"):
            raise DatasetError("no validation tracks: the split has an empty 'valid' side (needed for selection)")

    # ------------------------------------------------------------ shape facts
    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_bins(self) -> int:
        first = self.items["train"][0]
        return int(first.shape[-1] if self.kind == "table" else first.shape[0])

    @property
    def row_sequences(self) -> bool:
        """True for table data with several rows (windows) per track."""
        return self.kind == "table" and self.items["train"][0].ndim == 2

    @property
    def window_s(self) -> float | None:
        return None if self.kind == "table" else self.feature_config.window_s

    @property
    def db_features(self) -> bool:
        return self.kind in ("log_mel", "stft") and self.feature_config.log == "db"

    def has_split(self, split: str) -> bool:
        return bool(self.items.get(split))

    def labels_of(self, split: str) -> np.ndarray:
        return self.labels[split]

    def split_summary(self) -> dict:
        return {s: {"tracks": len(self.items.get(s, [])),
                    "per_class": np.bincount(self.labels[s], minlength=self.n_classes).tolist()}
                for s in SPLITS if self.items.get(s)}

    def class_weights(self) -> np.ndarray:
        """Inverse-frequency weights of the training classes, mean 1."""
        counts = np.bincount(self.labels["train"], minlength=self.n_classes).astype(np.float64)
        w = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0)
        return (w * (counts > 0).sum() / w.sum()).astype(np.float32)

    def table_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std of the training rows (for models that standardise tables)."""
        X = np.concatenate(self.items["train"]) if self.row_sequences else np.stack(self.items["train"])
        return X.mean(axis=0).astype(np.float32), (X.std(axis=0) + 1e-8).astype(np.float32)

    # ------------------------------------------------------------ sampling
    def epoch_size(self, windows_per_track: int) -> int:
        n = len(self.items["train"])
        return n if self.kind == "table" and not self.row_sequences else n * windows_per_track

    def epoch_samples(self, rng: np.random.Generator, *, windows_per_track: int = 4, crop: bool = True,
                      balanced: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """One epoch of training inputs: (N, n_bins[, W]) and (N,) class indices.

        With ``crop``, each window starts at a random frame of its track; otherwise
        windows sit on an even grid over the track. With ``balanced``, tracks are drawn
        with probability inversely proportional to their class's frequency.
        """
        train, y = self.items["train"], self.labels["train"]
        n = len(train)
        if balanced:
            w = self.class_weights()[y]
            picks = rng.choice(n, size=n, p=w / w.sum())
        else:
            picks = np.arange(n)
        if self.kind == "table" and not self.row_sequences:
            return np.stack([train[i] for i in picks]).astype(np.float32), y[picks]
        if self.row_sequences:
            rows, ys = [], []
            for i in picks:
                n_rows = len(train[i])
                idx = (rng.integers(0, n_rows, windows_per_track) if crop
                       else np.linspace(0, n_rows - 1, windows_per_track).round().astype(np.int64))
                rows.append(train[i][idx])
                ys.append(np.full(len(idx), y[i]))
            return np.concatenate(rows).astype(np.float32), np.concatenate(ys).astype(np.int64)
        win = self.feature_config.window_frames
        xs, ys = [], []
        for i in picks:
            feats = train[i]
            span = max(0, feats.shape[1] - win)
            if crop:
                starts = rng.integers(0, span + 1, windows_per_track)
            else:
                starts = np.linspace(0, span, windows_per_track).round().astype(np.int64)
            for s in starts:
                xs.append(_window_at(feats, int(s), win))
                ys.append(y[i])
        return np.stack(xs), np.asarray(ys, dtype=np.int64)

    def merged_for_refit(self) -> "TrainData":
        """Train on train + valid (for a final refit after selection); valid stays for logging only."""
        items = dict(self.items, train=self.items["train"] + self.items["valid"])
        labels = dict(self.labels, train=np.concatenate([self.labels["train"], self.labels["valid"]]))
        ids = dict(self.track_ids, train=self.track_ids.get("train", []) + self.track_ids.get("valid", []))
        return TrainData(self.classes, self.kind, self.feature_config, items, labels, ids)

    def track_windows(self, split: str) -> Iterator[np.ndarray]:
        """Every window of every track of ``split``, one (n_windows, n_bins[, W]) array per track."""
        for feats in self.items.get(split, []):
            if self.kind == "table":
                yield (feats if feats.ndim == 2 else feats[None, :]).astype(np.float32)
            else:
                yield slice_windows(feats, self.feature_config)[0]


def _window_at(feats: np.ndarray, start: int, win: int) -> np.ndarray:
    out = feats[:, start:start + win]
    if out.shape[1] < win:  # a track shorter than one window: pad like slice_windows does
        pad = np.full((feats.shape[0], win), feats.min() if feats.size else 0.0, np.float32)
        pad[:, :out.shape[1]] = out
        out = pad
    return out.astype(np.float32, copy=False)


def from_manifest(manifest, feature_config: FeatureConfig, kind: str, *, cache_root=None, jobs: int = 0,
                  progress: bool = True) -> TrainData:
    """Features of every track of a split manifest, through the feature cache.

    Tracks whose audio cannot be read are reported and left out.
    """
    from genrescope.features.cache import FeatureCache, extract_many

    cache = FeatureCache(cache_root, feature_config, kind)
    tracks = [t for t in manifest.entries if t.split in SPLITS]
    if not tracks:
        raise DatasetError("the manifest has no tracks with a train/valid/test split")
    report = extract_many([t.path for t in tracks], cache, jobs=jobs, progress=progress)
    failed = {str(p) for p, _ in report.failed}
    classes = list(manifest.labels)
    items: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    labels: dict[str, list[int]] = {s: [] for s in SPLITS}
    ids: dict[str, list[str]] = {s: [] for s in SPLITS}
    for t in tracks:
        if str(t.path) in failed:
            continue
        entry = report.entries.get(str(t.path))
        items[t.split].append(np.load(entry) if entry is not None else cache.get(t.path))
        labels[t.split].append(classes.index(t.label))
        ids[t.split].append(t.track_id)
    if failed:
        log.warning("%d unreadable track(s) left out", len(failed))
    return TrainData(classes, kind, feature_config, items,
                     {s: np.asarray(v, dtype=np.int64) for s, v in labels.items()}, ids)


def windows_per_track_default(data: TrainData) -> int:
    """About one window per window-length of audio in the median training track."""
    if data.kind == "table":
        return 1
    med = int(np.median([a.shape[1] for a in data.items["train"]]))
    return max(1, len(window_starts(med, data.feature_config.window_frames, data.feature_config.window_frames)))
