"""The Python API: ``load_model`` and what its ``predict`` returns.

    >>> import genrescope
    >>> model = genrescope.load_model()                 # the default model (genre10)
    >>> result = model.predict("song.mp3")               # or model.predict(y, sr=44100)
    >>> result.genres[0]                                 # ('blues', 0.48)

A :class:`Result` holds what ``genrescope predict --format json`` prints for the file, and
:meth:`Result.to_dict` gives exactly that object. Nothing here imports a model runtime until
:func:`load_model` is called.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from genrescope.errors import GenrescopeError

__all__ = ["Model", "Result", "load_model"]

def load_model(name_or_path: str | os.PathLike | None = None, *, backend: str = "auto",
               precision: str = "auto", runtime: str = "onnx", threads: int | None = None) -> "Model":
    """Load a model for prediction.

    Parameters
    ----------
    name_or_path : str or path-like, optional
        A shipped model name (``genrescope models --pretrained``), a checkpoint
        (``.safetensors``), an ONNX export, or a model folder. None: the default model.
    backend : str
        ``"auto"`` (default: OpenVINO when installed, else ONNX Runtime), ``"onnxruntime"`` (exact
        float32) or ``"openvino"`` (the ``fast`` extra).
    precision : str
        ``"auto"``, ``"fp32"`` or ``"bf16"`` (OpenVINO only).
    runtime : str
        ``"onnx"`` (no torch needed) or ``"torch"`` (the ``train`` extra).
    threads : int, optional
        Threads of one model call (None: every core).

    Raises
    ------
    GenrescopeError
        The model does not exist, cannot be read, or needs a package that is not installed.
    """
    from genrescope.inference.predict import Predictor

    return Model(Predictor(name_or_path or "default", runtime=runtime, threads=threads, backend=backend,
                           precision=precision))


class Model:
    """A loaded model; :meth:`predict` analyses one file or one signal."""

    def __init__(self, predictor):
        self._predictor = predictor

    @property
    def name(self) -> str:
        return self._predictor.name

    @property
    def labels(self) -> list[str]:
        """The labels of the model's answer, in the order of its probability columns."""
        return self._predictor.labels

    @property
    def sr(self) -> int:
        """The sample rate the model analyses at (arrays are resampled to it)."""
        return self._predictor.model.feature_config.sr

    def __repr__(self) -> str:
        return f"<genrescope model {self.name!r}: {len(self.labels)} labels at {self.sr} Hz>"

    def predict(self, source: str | os.PathLike | np.ndarray, sr: int | None = None, *,
                offset: float | None = None, duration: float | None = None) -> "Result":
        """Genres of one file or one signal, with the timeline they come from.

        Parameters
        ----------
        source : path-like or np.ndarray
            An audio file, or samples: (n,) mono or (n, channels), float in [-1, 1].
        sr : int, optional
            The samples' rate; required for an array, not allowed with a file.
        offset, duration : float, optional
            For a file: analyse ``duration`` seconds from ``offset`` on.

        Raises
        ------
        GenrescopeError
            Unreadable or unusable audio (the message names the file and the problem).
        """
        if isinstance(source, np.ndarray):
            if offset is not None or duration is not None:
                raise GenrescopeError("offset and duration apply to files; slice the array instead")
            return Result(self._predict_array(source, sr))
        if isinstance(source, (list, tuple)):
            raise GenrescopeError("predict takes one file or one array; call it once per file")
        if sr is not None:
            raise GenrescopeError(f"{source}: sr is for arrays; a file's own rate is read from the file")
        return Result(self._predictor.predict(source, offset=offset, duration=duration))

    def _predict_array(self, y: np.ndarray, sr: int | None):
        from genrescope.audio.guard import DecodeNotes, check_finite, warn_if_silent

        name = "<array>"
        if sr is None or int(sr) != sr or sr <= 0:
            raise GenrescopeError(f"{name}: an array needs its sample rate, e.g. model.predict(y, sr=44100)")
        y = _as_mono(y, name)
        notes: list[str] = []
        target = self.sr
        (y, _), = check_finite(iter([(y, int(sr))]), name)
        if int(sr) != target:
            import soxr

            y = soxr.resample(y, int(sr), target, quality="HQ").astype(np.float32, copy=False)
        blocks = warn_if_silent(_blocks(y), DecodeNotes(name, notes))
        run = self._predictor.analyse(blocks, path=name)
        chunks = list(run)
        return self._predictor.result(name, chunks, run.duration_s, notes, seconds=run.seconds)


def _as_mono(y: np.ndarray, name: str) -> np.ndarray:
    """(n,) float32 from (n,) or (n, channels) samples."""
    if y.ndim == 2:
        if y.shape[1] > 64 >= y.shape[0]:
            raise GenrescopeError(f"{name}: shape {y.shape} looks like (channels, samples); "
                                  "give (samples, channels), e.g. y.T")
        y = y.mean(axis=1)
    if y.ndim != 1:
        raise GenrescopeError(f"{name}: expected (samples,) or (samples, channels), got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.number) or np.iscomplexobj(y):
        raise GenrescopeError(f"{name}: expected real-valued samples, got dtype {y.dtype}")
    if np.issubdtype(y.dtype, np.integer):
        raise GenrescopeError(f"{name}: integer samples; convert to float in [-1, 1] first "
                              "(e.g. y / 32768 for 16-bit)")
    return np.ascontiguousarray(y, dtype=np.float32)


def _blocks(y: np.ndarray) -> Iterator[np.ndarray]:
    """``y`` in the blocks the decoder hands to the analysis."""
    from genrescope.audio.decode import OUT_BLOCK

    for i in range(0, len(y), OUT_BLOCK):
        yield y[i:i + OUT_BLOCK]


@dataclass
class Result:
    """The answer for one file or signal.

    Attributes
    ----------
    genres : list of (str, float)
        Labels and probabilities, highest first: one distribution that sums to one
        (a tagger's are independent tag probabilities).
    timeline : Timeline
        ``start_s``, ``end_s`` (T,), ``probs`` (T, G) and ``labels``: the belief per window.
    tags : list of (str, float) or None
        The taggers' other tags (moods, eras, instruments, genres outside the label set).
    warnings : list of str
        What did not stop the prediction: a truncated or damaged file, silence.
    """

    prediction: object

    @property
    def genres(self) -> list[tuple[str, float]]:
        return list(self.prediction.genres)

    @property
    def timeline(self):
        return self.prediction.timeline

    @property
    def tags(self) -> list[tuple[str, float]] | None:
        return None if self.prediction.tags is None else list(self.prediction.tags)

    @property
    def warnings(self) -> list[str]:
        return list(self.prediction.warnings)

    @property
    def duration_s(self) -> float | None:
        return self.prediction.duration_s

    def to_dict(self, *, timeline: bool = False, top: int = 5, tags: bool = False) -> dict:
        """The object ``genrescope predict --format json`` prints for this file, with the same
        options (``timeline``: ``--timeline``; ``top``: ``--top``, 0 = all; ``tags``: ``--tags``)."""
        from genrescope.inference.output import prediction_object

        return prediction_object(self.prediction, timeline=timeline, top=top, tags=tags)

    def __repr__(self) -> str:
        top = ", ".join(f"{g} {p:.2f}" for g, p in self.genres[:3])
        return f"<genrescope result {self.prediction.path}: {top}>"
