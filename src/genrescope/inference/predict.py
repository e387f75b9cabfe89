"""From an audio file to a :class:`Timeline` of genre probabilities, and the track answer.

The :class:`Predictor` decodes a file in blocks, computes the model's features with the
model's own :class:`~genrescope.config.FeatureConfig` (the one feature path), cuts
windows, runs them in batches on ONNX Runtime (or PyTorch with ``runtime="torch"``) and
returns a timeline. The track-level answer is :meth:`Timeline.track`, computed in one
place (:func:`genrescope.features.windows.aggregate`); every front end (CLI table, JSON/CSV, web
page) shows that timeline and that aggregate.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genrescope.audio.decode import check_duration, iter_audio_blocks
from genrescope.errors import GenrescopeError
from genrescope.features.spectrogram import compute, iter_log_mel
from genrescope.features.windows import aggregate, slice_windows

log = logging.getLogger(__name__)

#: Shortest audio any model is given, in seconds; shorter windows are padded up to the model's.
MIN_DURATION_S = 1.0


@dataclass
class Timeline:
    """Class probabilities over time.

    Attributes
    ----------
    start_s, end_s : np.ndarray
        (T,) window boundaries in seconds.
    probs : np.ndarray
        (T, G) probabilities of each label in each window.
    labels : list of str
        The G labels.
    multi_label : bool
        True when each probability is an independent tag probability (sigmoid outputs
        that need not sum to 1), False for a distribution over exclusive classes.
    """

    start_s: np.ndarray
    end_s: np.ndarray
    probs: np.ndarray
    labels: list[str]
    multi_label: bool = False

    @property
    def times_s(self) -> np.ndarray:
        """(T,) centre of each window."""
        return (self.start_s + self.end_s) / 2

    def track(self, method: str = "mean") -> np.ndarray:
        """(G,) the track-level probabilities: the aggregate of the windows."""
        return aggregate(self.probs, method)

    def select(self, labels: list[str]) -> "Timeline":
        """The same timeline restricted to ``labels`` (in that order)."""
        idx = [self.labels.index(lab) for lab in labels]
        return Timeline(self.start_s, self.end_s, self.probs[:, idx], list(labels), self.multi_label)

    def to_dict(self, digits: int = 4) -> dict:
        return {"labels": list(self.labels), "multi_label": self.multi_label,
                "start_s": [round(float(t), 3) for t in self.start_s],
                "end_s": [round(float(t), 3) for t in self.end_s],
                "probabilities": np.round(self.probs.astype(np.float64), digits).tolist()}


@dataclass
class Prediction:
    """The result for one file: the genre ranking, the timeline, or the error."""

    path: str
    model: str
    duration_s: float | None = None
    genres: list[tuple[str, float]] = field(default_factory=list)
    timeline: Timeline | None = None
    tags: list[tuple[str, float]] | None = None
    error: str | None = None
    seconds: dict = field(default_factory=dict)
    precision: str | None = None

    def to_dict(self, *, timeline: bool = False, top: int | None = None) -> dict:
        genres = self.genres if top is None else self.genres[:top]
        d = {"path": self.path, "model": self.model,
             "duration_s": None if self.duration_s is None else round(self.duration_s, 3),
             "genres": [{"label": g, "probability": round(float(p), 4)} for g, p in genres],
             "multi_label": bool(self.timeline.multi_label) if self.timeline is not None else None,
             "precision": self.precision, "error": self.error}
        if self.tags is not None:
            d["tags"] = [{"label": g, "probability": round(float(p), 4)} for g, p in self.tags]
        if timeline:
            d["timeline"] = None if self.timeline is None else self.timeline.to_dict()
        return d


class Predictor:
    """Runs one model over audio files.

    Parameters
    ----------
    model : str or path
        A shipped model name (``genrescope models --pretrained``), a checkpoint
        (``.safetensors``) or an ONNX export (``.onnx``). ``"default"`` is the pretrained
        tagger.
    runtime : str
        ``"onnx"`` (default; ONNX Runtime, no torch) or ``"torch"``.
    batch_size : int
        Windows per model call. Small on purpose: the taggers' intermediate tensors take
        about 100 MB per window, and at batch 32 a 4-minute song spent more time faulting
        in 3.5 GB of fresh memory than computing (bench/predict.py measured batch 1 at 4x
        the speed of batch 32 on one core).
    threads : int or None
        Threads of one model call (None: every core).
    backend : str
        ``"onnxruntime"`` (default, exact float32) or ``"openvino"`` (the ``fast`` extra).
    precision : str
        ``"auto"`` (openvino: bfloat16 where the CPU has it), ``"fp32"`` or ``"bf16"``; what
        really runs is ``self.model.precision`` and every Prediction's ``precision``.
    """

    def __init__(self, model: str | os.PathLike = "default", *, runtime: str = "onnx", batch_size: int = 1,
                 threads: int | None = None, backend: str = "onnxruntime", precision: str = "auto"):
        from genrescope.inference.runtimes import load_inference_model

        t0 = time.perf_counter()
        self.model = load_inference_model(model, runtime=runtime, threads=threads, backend=backend,
                                          precision=precision)
        self.load_seconds = time.perf_counter() - t0
        self.batch_size = batch_size

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def labels(self) -> list[str]:
        return list(self.model.labels)

    def predict(self, path: str | os.PathLike, *, offset: float | None = None,
                duration: float | None = None) -> Prediction:
        """Predict one file; raises GenrescopeError for unreadable audio."""
        m = self.model
        cfg = m.feature_config
        times: dict[str, float] = {}
        t0 = time.perf_counter()
        blocks = iter_audio_blocks(path, sr=cfg.sr, offset=offset, duration=duration)
        if m.kind == "table":
            y = np.concatenate(list(blocks))
            times["decode+features"] = time.perf_counter() - t0
            n_samples = len(y)
            check_duration(path, n_samples / cfg.sr, MIN_DURATION_S)
            probs, start, end = self._table_windows(y)
        else:
            counter = _Counter(blocks)
            if m.kind == "log_mel" and cfg.top_db is None:
                feats = np.concatenate(list(iter_log_mel(counter, cfg)), axis=1)
            else:  # mfcc / stft need the whole signal; still decoded block by block
                feats = compute(np.concatenate(list(counter)), cfg, m.kind)
            n_samples = counter.n
            times["decode+features"] = time.perf_counter() - t0
            check_duration(path, n_samples / cfg.sr, MIN_DURATION_S)
            t1 = time.perf_counter()
            if m.window_frames is None and m.predict_frames is not None:
                probs, start, end = self._frames(feats, n_samples / cfg.sr)
            else:
                windows, start, end = slice_windows(feats, cfg, win_frames=m.window_frames)
                probs = self._run(windows)
            times["model"] = time.perf_counter() - t1
        tl = Timeline(start + (offset or 0.0), end + (offset or 0.0), probs, self.labels, m.multi_label)
        pred = Prediction(str(path), m.name, n_samples / cfg.sr, timeline=tl, seconds=times, precision=m.precision)
        return self.rank(pred)

    def rank(self, pred: Prediction) -> Prediction:
        """Fill ``genres`` (and ``tags`` for taggers) from the timeline's track aggregate."""
        from genrescope.inference.taxonomy import split_genres_and_tags

        track = pred.timeline.track()
        genres, tags = split_genres_and_tags(self.labels, track, self.model.genre_labels)
        pred.genres, pred.tags = genres, tags
        return pred

    def _run(self, windows: np.ndarray) -> np.ndarray:
        out = [self.model.predict_windows(windows[i:i + self.batch_size])
               for i in range(0, len(windows), self.batch_size)]
        return np.concatenate(out).astype(np.float32)

    def _frames(self, feats: np.ndarray, duration_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Whole-song models: one pass per chunk of about 5 minutes; a row every frame_hop_s."""
        m = self.model
        cfg = m.feature_config
        chunk = int(round(300 * cfg.frame_rate))
        step = max(1, int(round(m.frame_hop_s * cfg.frame_rate)))  # input frames per output row
        chunk -= chunk % step
        min_len = max(step, 8)
        parts = []
        for i in range(0, feats.shape[1], chunk):
            piece = feats[:, i:i + chunk]
            if piece.shape[1] < min_len:  # a sliver at the end: pad it like a short song
                piece = np.pad(piece, ((0, 0), (0, min_len - piece.shape[1])), mode="edge")
            parts.append(m.predict_frames(piece))
        probs = np.concatenate(parts).astype(np.float32)
        start = np.arange(len(probs)) * m.frame_hop_s
        end = np.minimum(start + m.frame_hop_s, duration_s)
        keep = start < duration_s
        probs, start, end = probs[keep], start[keep], end[keep]
        end[-1] = duration_s  # the last row holds whatever the pooling left over
        return probs, start, end

    def _table_windows(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Table models: one table row per window of the waveform (30 s by default)."""
        from genrescope.features.gtzan_table import extract_row, COLUMNS
        from genrescope.features.windows import window_starts

        cfg = self.model.feature_config
        sr = cfg.sr
        win = int(round(cfg.window_s * sr))
        hop = max(1, int(round(cfg.window_hop_s * sr)))
        # a clip barely longer than one window (GTZAN's 30.013 s) is one window, not two near-copies
        starts = window_starts(len(y), win, hop) if len(y) > 1.1 * win else np.zeros(1, dtype=np.int64)
        rows = []
        for s in starts:
            seg = y[s:s + win]
            row = extract_row(seg, sr=sr, cfg=cfg)
            rows.append([row[c] for c in COLUMNS])
        probs = self._run(np.asarray(rows, dtype=np.float32))
        start = starts / sr
        end = np.minimum(starts + win, len(y)) / sr
        return probs, start, end


class _Counter:
    """Passes blocks through and counts their samples."""

    def __init__(self, blocks):
        self.blocks, self.n = blocks, 0

    def __iter__(self):
        for b in self.blocks:
            self.n += len(b)
            yield b


def predict_files(predictor: Predictor, paths: list[Path], *, jobs: int = 1, progress: bool = False
                  ) -> list[Prediction]:
    """Predict many files; a file that fails becomes a Prediction with ``error`` set."""
    def one(p: Path) -> Prediction:
        try:
            return predictor.predict(p)
        except GenrescopeError as e:
            return Prediction(str(p), predictor.name, error=str(e))

    if jobs <= 1 or len(paths) <= 1:
        results = []
        for p in _progress(paths, progress):
            results.append(one(p))
        return results
    from concurrent.futures import ThreadPoolExecutor

    # ONNX Runtime and numpy's FFT release the GIL, so threads scale without copying the model
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(_progress(pool.map(one, paths), progress, total=len(paths)))


def _progress(items, enabled: bool, total: int | None = None):
    import sys

    if not enabled or not sys.stderr.isatty():
        yield from items
        return
    n = total if total is not None else len(items)
    for i, item in enumerate(items, 1):
        yield item
        print(f"\r{i}/{n} files", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
