"""Timelines that arrive while a file is still being decoded, and live microphone estimates.

:class:`TimelineStream` runs the same steps as :meth:`genrescope.inference.predict.Predictor.predict`
(decode blocks -> :func:`~genrescope.features.spectrogram.iter_log_mel` -> model windows -> the model
in batches) but hands over each batch of windows as soon as it is computed, so the page
shows the beginning of a long song within a second. The windows, their times and the
final :class:`~genrescope.inference.predict.Prediction` are the ones ``predict`` gives.

:class:`LiveEstimator` keeps the last few seconds of a microphone stream, resampled to
the model's rate, and predicts on them with :func:`genrescope.features.spectrogram.compute`: the
browser sends raw samples and never computes features.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from genrescope.audio.decode import check_duration, iter_audio_blocks
from genrescope.errors import AudioError
from genrescope.features.spectrogram import compute, iter_log_mel
from genrescope.inference.predict import MIN_DURATION_S, Prediction, Predictor, Timeline
from genrescope.features.windows import slice_windows, window_starts


class AudioTooLongError(AudioError):
    """The audio is longer than the server accepts."""


@dataclass
class TimelineChunk:
    """Consecutive windows of a timeline.

    Attributes
    ----------
    start_s, end_s : np.ndarray
        (k,) window boundaries in seconds.
    probs : np.ndarray
        (k, G) probabilities.
    decoded_s : float
        Seconds of audio decoded so far.
    """

    start_s: np.ndarray
    end_s: np.ndarray
    probs: np.ndarray
    decoded_s: float


class _Limited:
    """Passes audio blocks through, counts samples and stops past ``max_samples``."""

    def __init__(self, blocks, path, sr: int, max_duration_s: float | None):
        self.blocks, self.path, self.sr, self.n = blocks, path, sr, 0
        self.max_samples = None if max_duration_s is None else int(max_duration_s * sr)

    def __iter__(self):
        for b in self.blocks:
            self.n += len(b)
            if self.max_samples is not None and self.n > self.max_samples:
                raise AudioTooLongError(self.path, f"is longer than the limit of {self.max_samples / self.sr:g} s")
            yield b


def _join(chunks: list[TimelineChunk]) -> TimelineChunk:
    if len(chunks) == 1:
        return chunks[0]
    return TimelineChunk(np.concatenate([c.start_s for c in chunks]), np.concatenate([c.end_s for c in chunks]),
                         np.concatenate([c.probs for c in chunks]), chunks[-1].decoded_s)


class TimelineStream:
    """Iterate over :class:`TimelineChunk` s of one file; then :attr:`prediction` holds the result.

    Parameters
    ----------
    predictor : Predictor
        The loaded model.
    path : path-like
        The audio file.
    name : str, optional
        What the prediction's ``path`` shows (default: ``path``).
    max_duration_s : float, optional
        Raise :class:`AudioTooLongError` once more than this much audio has been decoded.
    flush_s : float
        Windows are predicted as soon as their audio is decoded (in the predictor's
        batches); they are handed over in chunks, the first at once and then at most
        every ``flush_s`` seconds, so a long file gives a few hundred chunks, not one a window.
    """

    def __init__(self, predictor: Predictor, path, *, name: str | None = None, max_duration_s: float | None = None,
                 flush_s: float = 0.5):
        self.predictor, self.path = predictor, Path(path)
        self.name = str(path) if name is None else name
        self.max_duration_s = max_duration_s
        self.flush_s = flush_s
        self.prediction: Prediction | None = None
        self._chunks: list[TimelineChunk] = []

    def __iter__(self) -> Iterator[TimelineChunk]:
        m = self.predictor.model
        cfg = m.feature_config
        # whole-song models (no fixed window) and features that need the whole signal: one chunk
        streamable = (m.kind == "log_mel" and m.window_frames is not None
                      and not (cfg.log == "db" and cfg.top_db is not None))
        source = self._windowed() if streamable else self._whole()
        for chunk in source:
            self._chunks.append(chunk)
            yield chunk

    # ------------------------------------------------------------ streaming path
    def _windowed(self) -> Iterator[TimelineChunk]:
        m = self.predictor.model
        cfg = m.feature_config
        win, hop = m.window_frames, cfg.window_hop_frames
        blocks = _Limited(iter_audio_blocks(self.path, sr=cfg.sr), self.path, cfg.sr, self.max_duration_s)
        buf = np.zeros((cfg.n_mels, 0), np.float32)  # frames from global index `off` on
        off = total = next_start = 0
        done: list[TimelineChunk] = []  # predicted, not yet handed over
        last = None  # when the last chunk went out; None: nothing yet, so the first goes at once
        for feats in iter_log_mel(blocks, cfg):
            buf = np.concatenate([buf, feats], axis=1)
            total += feats.shape[1]
            starts = []
            while next_start + win <= total:
                starts.append(next_start)
                next_start += hop
            if starts:
                done.append(self._run(buf, off, np.asarray(starts), win, None, blocks.n / cfg.sr))
            if done and (last is None or time.perf_counter() - last > self.flush_s):
                yield _join(done)
                done, last = [], time.perf_counter()
            # keep from the last start taken on: the end-aligned last window starts after it
            keep = max(off, next_start - hop)
            buf, off = buf[:, keep - off:], keep
        n_samples = blocks.n
        check_duration(self.path, n_samples / cfg.sr, MIN_DURATION_S)
        if total < win:  # shorter than one window: padded exactly as slice_windows pads it
            windows, start_s, end_s = slice_windows(buf, cfg, win_frames=win)
            done.append(TimelineChunk(start_s, end_s, self.predictor._run(windows), n_samples / cfg.sr))
        else:
            tail = [s for s in window_starts(total, win, hop) if s >= next_start or s % hop]
            if tail:
                done.append(self._run(buf, off, np.asarray(tail), win, total, n_samples / cfg.sr))
        if done:
            yield _join(done)
        self._finish(n_samples)

    def _run(self, buf: np.ndarray, off: int, starts: np.ndarray, win: int, total: int | None,
             decoded_s: float) -> TimelineChunk:
        """Predict the windows starting at global frames ``starts``; ``buf`` holds frames from ``off`` on."""
        fr = self.predictor.model.feature_config.frame_rate
        windows = np.stack([buf[:, s - off: s - off + win] for s in starts])  # (k, n_bins, win)
        probs = self.predictor._run(windows)  # (k, G)
        ends = starts + win if total is None else np.minimum(starts + win, total)
        return TimelineChunk(starts / fr, ends / fr, probs, decoded_s)

    # ------------------------------------------------------------ other inputs: one chunk
    def _whole(self) -> Iterator[TimelineChunk]:
        limit = None if self.max_duration_s is None else self.max_duration_s + 1.0
        pred = self.predictor.predict(self.path, duration=limit)
        if self.max_duration_s is not None and pred.duration_s > self.max_duration_s:
            raise AudioTooLongError(self.path, f"is longer than the limit of {self.max_duration_s:g} s")
        tl = pred.timeline
        pred.path = self.name
        self.prediction = pred
        yield TimelineChunk(tl.start_s, tl.end_s, tl.probs, pred.duration_s)

    def _timeline(self) -> Timeline:
        c = self._chunks
        return Timeline(np.concatenate([x.start_s for x in c]), np.concatenate([x.end_s for x in c]),
                        np.concatenate([x.probs for x in c]), self.predictor.labels,
                        self.predictor.model.multi_label)

    def _finish(self, n_samples: int) -> None:
        m = self.predictor.model
        pred = Prediction(self.name, m.name, n_samples / m.feature_config.sr, timeline=self._timeline())
        self.prediction = self.predictor.rank(pred)

    def partial(self) -> Prediction | None:
        """The ranking of the windows seen so far (the track aggregate of a partial timeline)."""
        if not self._chunks:
            return None
        pred = Prediction(self.name, self.predictor.name, self._chunks[-1].decoded_s, timeline=self._timeline())
        return self.predictor.rank(pred)


class LiveEstimator:
    """The last ``seconds`` of a live stream at the model's rate, and estimates from them.

    Parameters
    ----------
    predictor : Predictor
        The loaded model.
    input_sr : int
        Sample rate of the pushed samples (the browser's audio context rate).
    seconds : float
        How much recent audio each estimate looks at.
    """

    def __init__(self, predictor: Predictor, input_sr: int, seconds: float = 6.0):
        import soxr

        self.predictor = predictor
        self.sr = predictor.model.feature_config.sr
        self.input_sr = int(input_sr)
        self.capacity = int(round(seconds * self.sr))
        self.buf = np.zeros(0, np.float32)
        self.received = 0  # input samples pushed in total
        self._resampler = None if self.input_sr == self.sr else soxr.ResampleStream(
            self.input_sr, self.sr, 1, dtype="float32", quality="HQ")

    @property
    def received_s(self) -> float:
        return self.received / self.input_sr

    def push(self, pcm: np.ndarray) -> None:
        """Append mono float32 samples at ``input_sr``; only the last ``seconds`` are kept."""
        pcm = np.asarray(pcm, np.float32).reshape(-1)
        pcm = np.nan_to_num(np.clip(pcm, -1.0, 1.0), nan=0.0)
        self.received += len(pcm)
        y = pcm if self._resampler is None else self._resampler.resample_chunk(pcm)
        self.buf = np.concatenate([self.buf, y])[-self.capacity:]

    def snapshot(self) -> np.ndarray:
        """A copy of the buffered audio at the model's rate, (n,) float32."""
        return self.buf.copy()

    def estimate(self, y: np.ndarray) -> dict | None:
        """Genre probabilities of a snapshot (None while under one second is buffered).

        Returns
        -------
        dict or None
            ``genres`` (ranked ``(label, probability)`` pairs), ``probs`` ((G,) track
            aggregate of the windows), ``level_db`` (RMS level) and ``seconds`` analysed.
        """
        if len(y) < MIN_DURATION_S * self.sr:
            return None
        m = self.predictor.model
        cfg = m.feature_config
        if m.kind == "table":
            probs, start, end = self.predictor._table_windows(y)
        else:
            feats = compute(y, cfg, m.kind)  # the one feature path, as for files
            if m.window_frames is None and getattr(m, "predict_frames", None) is not None:
                probs, start, end = self.predictor._frames(feats, len(y) / cfg.sr)  # whole-song model
            else:
                windows, start, end = slice_windows(feats, cfg, win_frames=m.window_frames)
                probs = self.predictor._run(windows)
        tl = Timeline(start, end, probs, self.predictor.labels, m.multi_label)
        pred = self.predictor.rank(Prediction("live", m.name, len(y) / cfg.sr, timeline=tl))
        rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
        return {"genres": pred.genres, "tags": pred.tags, "probs": tl.track(),
                "level_db": round(20 * np.log10(max(rms, 1e-6)), 1), "seconds": round(len(y) / cfg.sr, 2)}
