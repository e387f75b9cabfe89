"""Timelines that arrive while a file is still being decoded, and live microphone estimates.

Both run the one analysis path, :class:`genrescope.inference.pipeline.Analysis` (decode
blocks -> features -> model windows -> the model in batches), the same one
:meth:`genrescope.inference.predict.Predictor.predict` runs. :class:`TimelineStream` hands
over each batch of windows as soon as it is computed, so the page shows the beginning of a
long song within a second; its windows, their times and the final
:class:`~genrescope.inference.predict.Prediction` are the ones ``predict`` gives.

:class:`LiveEstimator` keeps the last few seconds of a microphone stream, resampled to
the model's rate, and analyses them as one block: the browser sends raw samples and never
computes features.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from genrescope.audio.decode import iter_audio_blocks
from genrescope.audio.guard import SILENCE_PEAK
from genrescope.errors import AudioError
from genrescope.inference.pipeline import MIN_DURATION_S, Chunk
from genrescope.inference.predict import Prediction, Predictor

#: The chunks a stream hands over (the pipeline's :class:`~genrescope.inference.pipeline.Chunk`).
TimelineChunk = Chunk


class AudioTooLongError(AudioError):
    """The audio is longer than the server accepts."""


def _limited(blocks, path, sr: int, max_duration_s: float | None):
    """Pass audio blocks through; raise :class:`AudioTooLongError` past ``max_duration_s``."""
    max_samples = None if max_duration_s is None else int(max_duration_s * sr)
    n = 0
    for b in blocks:
        n += len(b)
        if max_samples is not None and n > max_samples:
            raise AudioTooLongError(path, f"is longer than the limit of {max_samples / sr:g} s")
        yield b


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
        Models that cannot stream (:func:`~genrescope.inference.pipeline.can_stream`) give one chunk.

    Attributes
    ----------
    warnings : list of str
        What the decoder noted about the file (truncated, damaged, silent), so far.
    """

    def __init__(self, predictor: Predictor, path, *, name: str | None = None, max_duration_s: float | None = None,
                 flush_s: float = 0.5):
        self.predictor, self.path = predictor, Path(path)
        self.name = str(path) if name is None else name
        self.max_duration_s = max_duration_s
        self.flush_s = flush_s
        self.prediction: Prediction | None = None
        self.warnings: list[str] = []
        self._chunks: list[TimelineChunk] = []

    def __iter__(self) -> Iterator[TimelineChunk]:
        sr = self.predictor.model.feature_config.sr
        blocks = _limited(iter_audio_blocks(self.path, sr=sr, notes=self.warnings), self.path, sr,
                          self.max_duration_s)
        run = self.predictor.analyse(blocks, path=self.path, flush_s=self.flush_s)
        for chunk in run:
            self._chunks.append(chunk)
            yield chunk
        self.prediction = self.predictor.result(self.name, self._chunks, run.duration_s, self.warnings,
                                                seconds=run.seconds)

    def partial(self) -> Prediction | None:
        """The ranking of the windows seen so far (the track aggregate of a partial timeline)."""
        if not self._chunks:
            return None
        return self.predictor.result(self.name, self._chunks, self._chunks[-1].decoded_s, self.warnings)


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
            aggregate of the windows), ``level_db`` (RMS level), ``seconds`` analysed and
            ``warnings`` (the input is silent).
        """
        if len(y) < MIN_DURATION_S * self.sr:
            return None
        run = self.predictor.analyse([y], path="live")
        rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
        silent = float(np.max(np.abs(y))) < SILENCE_PEAK
        pred = self.predictor.result("live", list(run), len(y) / self.sr,
                                     ["live: the input is silent (peak below -80 dBFS)"] if silent else [])
        return {"genres": pred.genres, "tags": pred.tags, "probs": pred.timeline.track(),
                "level_db": round(20 * np.log10(max(rms, 1e-6)), 1), "seconds": round(len(y) / self.sr, 2),
                "warnings": pred.warnings}
