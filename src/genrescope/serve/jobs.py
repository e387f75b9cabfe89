"""The analysis of one upload, within its budget, and what its errors answer.

A job is admitted only once its upload is complete (:class:`JobGate`: running plus waiting
for a worker, 429 past it), so a slow body holds no worker. Before anything is decoded the
file's header must fit the job's budget: its duration, the samples the decoder would read
(rate x channels x frames) and an estimate of the working memory. While it runs, a
:class:`Budget` is checked before every model call: past ``job_timeout_s`` the job fails
with 503, and once its client has gone it stops (:class:`JobCancelled`). The functions here
run in a worker process whose memory is measured (:mod:`genrescope.serve.workers`), or in
a thread of the server.

Every error a request can cause maps to one status (:func:`error_status`) and to a message
that names the client's file, never a server path (:func:`public_message`).
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import threading
import time

import numpy as np

from genrescope.errors import (AudioError, AudioTooShortError, CheckpointError, CorruptAudioError,
                               EmptyAudioError, GenrescopeError, UnsupportedAudioError)
from genrescope.serve.model_catalog import UnknownModelError
from genrescope.serve.stream import AudioTooLongError, TimelineStream
from genrescope.serve.upload import Upload, UploadError

log = logging.getLogger(__name__)

#: Native samples (frames x channels) a job may decode per second of ``max_duration_s``:
#: 48 kHz stereo. A 1.7 MB FLAC of 8 channels at 384 kHz may then hold 56 s, not 30 minutes.
SAMPLES_PER_SECOND = 96000


class TooBusyError(GenrescopeError):
    """Every worker is busy and the queue is full."""


class JobTimeoutError(GenrescopeError):
    """The analysis ran past its time budget."""


class JobMemoryError(GenrescopeError):
    """The analysis used more memory than its budget (its worker was stopped)."""


class JobFailed(GenrescopeError):
    """A job that failed in a worker process: the ``status`` and public message it answers."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class JobCancelled(Exception):
    """The client left: the job stops (nobody reads its answer)."""


class JobGate:
    """Admits at most ``limit`` jobs at a time (running plus waiting for a worker)."""

    def __init__(self, limit: int):
        self.limit, self.active = limit, 0
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            if self.active >= self.limit:
                raise TooBusyError(f"the server is busy ({self.active} files in progress); try again in a moment")
            self.active += 1

    def leave(self) -> None:
        with self._lock:
            self.active -= 1


class Budget:
    """A job's deadline and its client's presence, checked between model calls.

    Parameters
    ----------
    seconds : float
        The job's time limit (for the message).
    remaining_s : float, optional
        Seconds left of it (default: all of them; a worker process gets what is left).
    stop : Event, optional
        Set when the client has left (default: a new :class:`threading.Event`).
    """

    def __init__(self, seconds: float, *, remaining_s: float | None = None, stop=None):
        self.seconds = seconds
        self.deadline = time.monotonic() + (seconds if remaining_s is None else remaining_s)
        self.stop = threading.Event() if stop is None else stop

    def check(self) -> None:
        if self.stop.is_set():
            raise JobCancelled()
        if time.monotonic() > self.deadline:
            raise JobTimeoutError(f"the analysis took longer than the limit of {self.seconds:g} s")


def guarded(predictor, budget: Budget):
    """A shallow copy of ``predictor`` whose model checks ``budget`` before every call."""
    m = predictor.model

    def windows(x: np.ndarray) -> np.ndarray:
        budget.check()
        return m.predict_windows(x)

    def frames(x: np.ndarray) -> np.ndarray:
        budget.check()
        return m.predict_frames(x)

    out = copy.copy(predictor)
    out.model = dataclasses.replace(m, predict_windows=windows,
                                    predict_frames=None if m.predict_frames is None else frames)
    return out


def error_status(err: Exception) -> int:
    """HTTP status of an error a request can cause."""
    if isinstance(err, (UploadError, JobFailed)):
        return err.status
    for cls, status in ((TooBusyError, 429), (JobTimeoutError, 503), (JobMemoryError, 413), (UnknownModelError, 404),
                        (AudioTooLongError, 413), (UnsupportedAudioError, 415), (EmptyAudioError, 422),
                        (CorruptAudioError, 422), (AudioTooShortError, 422), (CheckpointError, 500),
                        (GenrescopeError, 422)):
        if isinstance(err, cls):
            return status
    return 500


def error_answer(err: Exception, upload: Upload | None = None) -> tuple[int, str]:
    """The HTTP status and the public message of an error a request caused: every answer
    (the JSON endpoints, the event stream, the job workers) is made here."""
    return error_status(err), public_message(err, upload)


def public_message(err: Exception, upload: Upload | None = None) -> str:
    """The error as the client may see it: about the client's file name, never a server path."""
    if isinstance(err, AudioError) and upload is not None:
        reason = err.reason.replace(str(upload.path), upload.filename).replace(str(upload.path.parent), "")
        return f"{upload.filename}: {reason}"
    if isinstance(err, CheckpointError):  # its message names the model's file on this server
        log.error("%s", err)
        return "the model cannot be loaded (see the server log)"
    if isinstance(err, AudioError):
        return f"{err.path.rsplit('/', 1)[-1]}: {err.reason}"
    if isinstance(err, GenrescopeError):
        return str(err)
    return "internal error (see the server log)"


def check_header(upload: Upload, settings, model) -> float:
    """The duration the header declares; raises before decoding when the file does not fit the budget."""
    from genrescope.audio.decode import audio_info

    info = audio_info(upload.path)
    limit = settings.max_duration_s
    if info.duration_s > limit:
        raise AudioTooLongError(upload.path, f"is {info.duration_s:.1f} s long; the limit is {limit:g} s")
    if info.frames * info.channels > limit * SAMPLES_PER_SECOND:
        raise AudioTooLongError(upload.path, f"declares {info.frames * info.channels:,} samples "
                                             f"({info.channels} channels at {info.sr} Hz); the limit is "
                                             f"{int(limit * SAMPLES_PER_SECOND):,}")
    need = job_bytes(info.duration_s, info.sr, info.channels, model)
    if need > settings.max_job_mb * (1 << 20):
        raise AudioTooLongError(upload.path, f"would need about {need / (1 << 20):.0f} MiB to analyse; the limit "
                                             f"is {settings.max_job_mb:g} MiB")
    return info.duration_s


def job_bytes(duration_s: float, native_sr: int, channels: int, model) -> int:
    """Working memory of one analysis, estimated: a decoded block (native and resampled), the
    whole feature matrix twice (it is concatenated) and the model windows cut from it."""
    from genrescope.audio.decode import OUT_BLOCK, frames_per_read

    cfg = model.feature_config
    block = 4 * (frames_per_read(native_sr, cfg.sr, channels, True) * channels + OUT_BLOCK)
    n_bins = cfg.n_mels if model.kind == "log_mel" else cfg.n_fft // 2 + 1
    feats = duration_s * cfg.frame_rate * n_bins * 4
    win = model.window_frames or 1
    overlap = max(1.0, win / cfg.window_hop_frames) if model.window_frames else 1.0
    return int(block + 2 * feats + feats * overlap)


def predict_job(catalog, model_id: str, upload: Upload, top: int | None, settings, budget: Budget) -> dict:
    """Worker thread: the CLI's prediction of one file, as its JSON object."""
    budget.check()
    predictor = catalog.get(model_id)
    check_header(upload, settings, predictor.model)
    budget.check()
    pred = guarded(predictor, budget).predict(upload.path, duration=settings.max_duration_s + 1.0)
    if pred.duration_s > settings.max_duration_s:
        raise AudioTooLongError(upload.path, f"is longer than the limit of {settings.max_duration_s:g} s")
    pred.path = upload.filename
    return scrubbed(pred.to_dict(timeline=True, top=top), upload)


def scrubbed(result: dict, upload: Upload) -> dict:
    """``result`` with the upload's private path replaced by the client's file name in its warnings."""
    if result.get("warnings"):
        result["warnings"] = [str(w).replace(str(upload.path), upload.filename)
                              .replace(str(upload.path.parent), "") for w in result["warnings"]]
    return result


def _r(a: np.ndarray, digits: int) -> list:
    return np.round(np.asarray(a, np.float64), digits).tolist()


class StreamJob:
    """Worker thread: decode and predict one file, emitting events as windows are done."""

    def __init__(self, catalog, model_id, upload: Upload, top, settings, emit, budget: Budget):
        self.catalog, self.model_id, self.upload, self.top = catalog, model_id, upload, top
        self.settings, self.emit, self.budget = settings, emit, budget

    def __call__(self) -> None:
        try:
            self.budget.check()
            predictor = self.catalog.get(self.model_id)
            header_s = check_header(self.upload, self.settings, predictor.model)
            info = self.catalog.describe(self.model_id)
            self.emit({**info, "event": "start", "file": self.upload.filename, "duration_s": round(header_s, 3),
                       "size": self.upload.size})
            stream = TimelineStream(guarded(predictor, self.budget), self.upload.path, name=self.upload.filename,
                                    max_duration_s=self.settings.max_duration_s)
            for chunk in stream:
                self.budget.check()
                partial = stream.partial()
                self.emit({"event": "windows", "start_s": _r(chunk.start_s, 3), "end_s": _r(chunk.end_s, 3),
                           "probabilities": _r(chunk.probs, 4), "decoded_s": round(chunk.decoded_s, 3),
                           "genres": [{"label": g, "probability": round(p, 4)} for g, p in partial.genres]})
            result = scrubbed(stream.prediction.to_dict(timeline=True, top=self.top), self.upload)
            self.emit({"event": "result", "result": result})
        except JobCancelled:
            log.info("analysis of %s stopped: the client left", self.upload.filename)
        except GenrescopeError as e:
            status, message = error_answer(e, self.upload)
            self.emit({"event": "error", "status": status, "error": message})
        except Exception:
            log.exception("analysis of an upload failed")
            self.emit({"event": "error", "status": 500, "error": "internal error (see the server log)"})
