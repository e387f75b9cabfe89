"""The one path from audio to probabilities: blocks -> features -> windows -> model.

Every front end runs it: :meth:`genrescope.inference.predict.Predictor.predict` (the CLI,
``evaluate``, ``/api/predict``), the streaming endpoint (:class:`genrescope.serve.stream.TimelineStream`)
and the live microphone estimate. :class:`Analysis` takes consecutive float32 blocks at
the model's rate and yields :class:`Chunk` s of the timeline. When :func:`can_stream` says
so, windows are predicted as soon as their audio has arrived; otherwise (whole-song
models, table models, features that need the whole signal) everything is one chunk.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from genrescope.audio.decode import check_duration
from genrescope.errors import AudioError
from genrescope.features.spectrogram import compute, iter_log_mel
from genrescope.features.windows import slice_windows, window_starts
from genrescope.inference.inference_model import model_pool, predict_batches

#: Shortest audio any model is given, in seconds; shorter windows are padded up to the model's.
MIN_DURATION_S = 1.0


@dataclass
class Chunk:
    """Consecutive windows of a timeline.

    Attributes
    ----------
    start_s, end_s : np.ndarray
        (k,) window boundaries in seconds.
    probs : np.ndarray
        (k, G) probabilities.
    decoded_s : float
        Seconds of audio decoded so far.
    tags : np.ndarray or None
        (k, K) tag probabilities of the taggers behind a head (``model.tag_labels``).
    rows : np.ndarray or None
        (k, D) backbone rows of a head learnt on pooled rows (``model.row_width``).
    """

    start_s: np.ndarray
    end_s: np.ndarray
    probs: np.ndarray
    decoded_s: float
    tags: np.ndarray | None = None
    rows: np.ndarray | None = None


def join(chunks: list[Chunk]) -> Chunk:
    """One chunk holding the windows of ``chunks`` in order."""
    if len(chunks) == 1:
        return chunks[0]
    tags = None if chunks[0].tags is None else np.concatenate([c.tags for c in chunks])
    rows = None if chunks[0].rows is None else np.concatenate([c.rows for c in chunks])
    return Chunk(np.concatenate([c.start_s for c in chunks]), np.concatenate([c.end_s for c in chunks]),
                 np.concatenate([c.probs for c in chunks]), chunks[-1].decoded_s, tags, rows)


def incremental_features(model) -> bool:
    """True when the model's features can be computed block by block (log-mel without ``top_db``)."""
    cfg = model.feature_config
    return model.kind == "log_mel" and not (cfg.log == "db" and cfg.top_db is not None)


def can_stream(model) -> bool:
    """True when windows can be predicted while the audio is still arriving.

    That takes fixed-length windows (not a whole-song model, not table rows) of features
    computed block by block. Everything else is analysed in one piece.
    """
    return incremental_features(model) and model.window_frames is not None


class Analysis:
    """One pass of a model over audio given as blocks; iterate for the :class:`Chunk` s.

    Parameters
    ----------
    model : InferenceModel
        The model (its ``feature_config`` says the rate the blocks must have).
    blocks : iterable of np.ndarray
        (n,) float32 blocks at ``model.feature_config.sr``.
    path : str or path-like
        What errors name.
    batch_size : int
        Windows per model call.
    flush_s : float or None
        Streaming models: hand over predicted windows at once and then at most every
        ``flush_s`` seconds. None: one chunk at the end.

    Attributes
    ----------
    n_samples : int
        Samples received so far.
    seconds : dict
        ``decode+features`` and ``model`` wall time, filled as it runs.
    """

    def __init__(self, model, blocks: Iterable[np.ndarray], *, path="audio", batch_size: int = 1,
                 flush_s: float | None = None):
        self.model, self.blocks, self.path = model, blocks, path
        self.batch_size, self.flush_s = batch_size, flush_s
        self.n_samples = 0
        self.seconds = {"decode+features": 0.0, "model": 0.0}
        self._pending: list = []  # model calls in flight (a model with workers), oldest first
        self._call_s: list[float] = []  # their durations

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.model.feature_config.sr

    def __iter__(self) -> Iterator[Chunk]:
        t0 = time.perf_counter()
        source = self._windowed() if can_stream(self.model) else self._whole()
        for chunk in source:
            yield self._split_tags(chunk)
        if self._call_s:  # calls ran side by side with decoding: the model's share of the wall time
            self.seconds["model"] += sum(self._call_s) / max(1, self.model.workers)
        self.seconds["decode+features"] = max(0.0, time.perf_counter() - t0 - self.seconds["model"])

    def _split_tags(self, c: Chunk) -> Chunk:
        """A head behind taggers gives its labels' columns, then the tags': two arrays."""
        if not getattr(self.model, "tag_labels", None):
            return c
        g, r = len(self.model.labels), getattr(self.model, "row_width", 0)
        if r:  # a head learnt on pooled rows: its labels, the tags, then the backbone's rows
            return Chunk(c.start_s, c.end_s, c.probs[:, :g], c.decoded_s, c.probs[:, g:-r], c.probs[:, -r:])
        return Chunk(c.start_s, c.end_s, c.probs[:, :g], c.decoded_s, c.probs[:, g:])

    def _count(self) -> Iterator[np.ndarray]:
        for b in self.blocks:
            self.n_samples += len(b)
            yield b

    def run(self, x: np.ndarray) -> np.ndarray:
        """(N, ...) windows or rows -> (N, G) float32 probabilities, in batches; refuses non-finite output."""
        t0 = time.perf_counter()
        bs = self.batch_size
        out = np.concatenate(predict_batches(self.model, [x[i:i + bs] for i in range(0, len(x), bs)]))
        self.seconds["model"] += time.perf_counter() - t0
        return _finite(out.astype(np.float32), self.path)

    # ------------------------------------------------------------ streaming path
    def _windowed(self) -> Iterator[Chunk]:
        cfg = self.model.feature_config
        win, hop = self.model.window_frames, cfg.window_hop_frames
        buf = np.zeros((cfg.n_mels, 0), np.float32)  # frames from global index `off` on
        off = total = next_start = 0
        done: list[Chunk] = []  # predicted, not yet handed over
        last = None  # when the last chunk went out; None: nothing yet, so the first goes at once
        for feats in iter_log_mel(self._count(), cfg):
            buf = np.concatenate([buf, feats], axis=1)
            total += feats.shape[1]
            starts = []
            while next_start + win <= total:
                starts.append(next_start)
                next_start += hop
            if starts:
                done.append(self._windows_at(buf, off, np.asarray(starts), win, None))
            if self.flush_s is not None and done and (last is None or time.perf_counter() - last > self.flush_s):
                yield self._ready(done)
                done, last = [], time.perf_counter()
            # keep from the last start taken on: the end-aligned last window starts after it
            keep = max(off, next_start - hop)
            buf, off = buf[:, keep - off:], keep
        check_duration(self.path, self.duration_s, MIN_DURATION_S)
        if total < win:  # shorter than one window: padded exactly as slice_windows pads it
            windows, start_s, end_s = slice_windows(buf, cfg, win_frames=win)
            done.append(Chunk(start_s, end_s, self.run(windows), self.duration_s))
        else:
            tail = [s for s in window_starts(total, win, hop) if s >= next_start or s % hop]
            if tail:
                done.append(self._windows_at(buf, off, np.asarray(tail), win, total))
        if done:
            yield self._ready(done)

    def _windows_at(self, buf: np.ndarray, off: int, starts: np.ndarray, win: int, total: int | None) -> Chunk:
        """Predict the windows starting at global frames ``starts``; ``buf`` holds frames from ``off`` on."""
        fr = self.model.feature_config.frame_rate
        windows = np.stack([buf[:, s - off: s - off + win] for s in starts])  # (k, n_bins, win)
        ends = starts + win if total is None else np.minimum(starts + win, total)
        return Chunk(starts / fr, ends / fr, self._submit(windows), self.duration_s)

    def _submit(self, windows: np.ndarray):
        """The windows' probabilities; with model ``workers``, a future of them (see :meth:`_ready`).

        With workers, decoding goes on while the calls run, one per core: a song's windows fill
        every core although each arrives alone. At most 4 calls a worker wait in flight.
        """
        workers = self.model.workers
        if workers <= 1:
            return self.run(windows)

        def call() -> np.ndarray:
            t0 = time.perf_counter()
            out = self.model.predict_windows(windows)
            self._call_s.append(time.perf_counter() - t0)
            return out

        future = model_pool(workers).submit(call)
        self._pending.append(future)
        while len(self._pending) > 4 * workers:
            self._pending.pop(0).result()
        return future

    def _ready(self, chunks: list[Chunk]) -> Chunk:
        """``join(chunks)`` once every model call of theirs has finished (non-finite output refused)."""
        for c in chunks:
            if not isinstance(c.probs, np.ndarray):
                c.probs = _finite(np.asarray(c.probs.result(), dtype=np.float32), self.path)
        self._pending = [f for f in self._pending if not f.done()]
        return join(chunks)

    # ------------------------------------------------------------ everything else: one chunk
    def _whole(self) -> Iterator[Chunk]:
        m = self.model
        cfg = m.feature_config
        if m.kind == "table":
            y = _signal(self._count())
            check_duration(self.path, self.duration_s, MIN_DURATION_S)
            probs, start, end = self._table_windows(y)
        else:
            if incremental_features(m):  # bounded memory while decoding
                parts = list(iter_log_mel(self._count(), cfg))
                feats = np.concatenate(parts, axis=1) if parts else np.zeros((cfg.n_mels, 0), np.float32)
            else:  # mfcc / stft / top_db need the whole signal; still decoded block by block
                feats = compute(_signal(self._count()), cfg, m.kind)
            check_duration(self.path, self.duration_s, MIN_DURATION_S)
            if m.window_frames is None and m.predict_frames is not None:
                probs, start, end = self._frames(feats)
            else:
                windows, start, end = slice_windows(feats, cfg, win_frames=m.window_frames)
                probs = self.run(windows)
        yield Chunk(start, end, probs, self.duration_s)

    def _frames(self, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Whole-song models: one pass per chunk of about 5 minutes; a row every frame_hop_s."""
        m = self.model
        cfg = m.feature_config
        duration_s = self.duration_s
        chunk = int(round(300 * cfg.frame_rate))
        step = max(1, int(round(m.frame_hop_s * cfg.frame_rate)))  # input frames per output row
        chunk -= chunk % step
        min_len = max(step, 8)
        parts = []
        t0 = time.perf_counter()
        for i in range(0, feats.shape[1], chunk):
            piece = feats[:, i:i + chunk]
            if piece.shape[1] < min_len:  # a sliver at the end: pad it like a short song
                piece = np.pad(piece, ((0, 0), (0, min_len - piece.shape[1])), mode="edge")
            parts.append(m.predict_frames(piece))
        self.seconds["model"] += time.perf_counter() - t0
        probs = _finite(np.concatenate(parts).astype(np.float32), self.path)
        start = np.arange(len(probs)) * m.frame_hop_s
        end = np.minimum(start + m.frame_hop_s, duration_s)
        keep = start < duration_s
        probs, start, end = probs[keep], start[keep], end[keep]
        end[-1] = duration_s  # the last row holds whatever the pooling left over
        return probs, start, end

    def _table_windows(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Table models: one table row per window of the waveform (30 s by default)."""
        from genrescope.features.gtzan_table import COLUMNS, extract_row

        cfg = self.model.feature_config
        sr = cfg.sr
        win = int(round(cfg.window_s * sr))
        hop = max(1, int(round(cfg.window_hop_s * sr)))
        # a clip barely longer than one window (GTZAN's 30.013 s) is one window, not two near-copies
        starts = window_starts(len(y), win, hop) if len(y) > 1.1 * win else np.zeros(1, dtype=np.int64)
        rows = []
        for s in starts:
            row = extract_row(y[s:s + win], sr=sr, cfg=cfg)
            rows.append([row[c] for c in COLUMNS])
        probs = self.run(np.asarray(rows, dtype=np.float32))
        return probs, starts / sr, np.minimum(starts + win, len(y)) / sr


def _signal(blocks: Iterable[np.ndarray]) -> np.ndarray:
    parts = list(blocks)
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def _finite(probs: np.ndarray, path) -> np.ndarray:
    # finite audio can still overflow float32 features (samples of 1e30): never pass NaN on
    if not np.isfinite(probs).all():
        raise AudioError(path, "the model gave non-finite probabilities (sample values far outside [-1, 1]?)")
    return probs
