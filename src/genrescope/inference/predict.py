"""From an audio file to a :class:`Timeline` of genre probabilities, and the track answer.

The :class:`Predictor` decodes a file in blocks and runs the one analysis path
(:class:`genrescope.inference.pipeline.Analysis`: the model's own
:class:`~genrescope.config.FeatureConfig`, windows, the model in batches on ONNX Runtime or
PyTorch with ``runtime="torch"``), and returns a timeline. The track-level answer is :meth:`Timeline.track`, computed in one
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

from genrescope.audio.decode import iter_audio_blocks
from genrescope.errors import GenrescopeError
from genrescope.features.windows import aggregate
from genrescope.progress import progress_iter
from genrescope.inference.pipeline import MIN_DURATION_S, Analysis, Chunk, join

log = logging.getLogger(__name__)

__all__ = ["MIN_DURATION_S", "Prediction", "Predictor", "Timeline", "predict_files"]


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
    #: (G,) the track answer of a head learnt on pooled rows (the windows' mean and spread),
    #: which the mean of its window beliefs only approximates; None for every other model
    track_probs: np.ndarray | None = None

    def track(self, method: str = "mean") -> np.ndarray:
        """(G,) the track-level probabilities: the aggregate of the windows (or, for a head learnt on
        pooled rows, its answer on the song's pooled rows)."""
        if self.track_probs is not None and method == "mean":
            return np.asarray(self.track_probs, dtype=np.float32)
        return aggregate(self.probs, method)

    def to_dict(self, digits: int = 4) -> dict:
        return {"labels": list(self.labels), "multi_label": self.multi_label,
                "start_s": [round(float(t), 3) for t in self.start_s],
                "end_s": [round(float(t), 3) for t in self.end_s],
                "probabilities": np.round(self.probs.astype(np.float64), digits).tolist()}


@dataclass
class Prediction:
    """The result for one file: the genre ranking, the timeline, or the error.

    ``warnings`` are one-line notes about the input that did not stop the prediction
    (truncated or damaged file, silence); each starts with the file's name.
    """

    path: str
    model: str
    duration_s: float | None = None
    genres: list[tuple[str, float]] = field(default_factory=list)
    timeline: Timeline | None = None
    tags: list[tuple[str, float]] | None = None
    error: str | None = None
    #: a head behind taggers: the taggers' tag probabilities over the same windows
    tag_timeline: Timeline | None = None
    seconds: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    precision: str | None = None
    #: the engine that ran the model (``--backend auto`` names the one it picked)
    backend: str | None = None

    def to_dict(self, *, timeline: bool = False, top: int | None = None) -> dict:
        genres = self.genres if top is None else self.genres[:top]
        d = {"path": self.path, "model": self.model,
             "duration_s": None if self.duration_s is None else round(self.duration_s, 3),
             "genres": [{"label": g, "probability": round(float(p), 4)} for g, p in genres],
             "multi_label": bool(self.timeline.multi_label) if self.timeline is not None else None,
             "backend": self.backend, "precision": self.precision, "error": self.error, "warnings": list(self.warnings)}
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
        tens of MB per window, and large batches spent more time faulting in fresh memory
        than computing (batch 1 ran 4x the speed of batch 32 on one core).
    threads : int or None
        Threads of one model call. None (every core): one-thread calls side by side, one per
        core, each window submitted as it is decoded.
    backend : str
        ``"auto"`` (default: OpenVINO when installed, else ONNX Runtime), ``"onnxruntime"`` (exact float32)
        or ``"openvino"`` (the ``fast`` extra).
    precision : str
        ``"auto"`` (openvino: bfloat16 where the CPU has it), ``"fp32"`` or ``"bf16"``; what
        really runs is ``self.model.precision`` and every Prediction's ``precision``.
    """

    def __init__(self, model: str | os.PathLike = "default", *, runtime: str = "onnx", batch_size: int = 1,
                 threads: int | None = None, backend: str = "auto", precision: str = "auto"):
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
                duration: float | None = None, windows: int = 0) -> Prediction:
        """Predict one file (or ``duration`` seconds of it from ``offset`` on).

        With ``windows`` > 0 and a song longer than that many model windows, only ``windows``
        windows spread evenly over it are analysed (``genrescope tag --windows``); the track
        answer is their aggregate. Raises GenrescopeError for unreadable audio. The timeline's
        times are seconds in the file, so they start at ``offset``.
        """
        if windows > 0:
            if offset is not None or duration is not None:
                raise GenrescopeError("predict: windows spread over the song take no offset or duration")
            return self._predict_spread(path, windows)
        notes: list[str] = []
        blocks = iter_audio_blocks(path, sr=self.model.feature_config.sr, offset=offset, duration=duration,
                                   notes=notes)
        run = self.analyse(blocks, path=path)
        chunks = list(run)
        return self.result(str(path), chunks, run.duration_s, notes, offset=offset or 0.0, seconds=run.seconds)

    def _predict_spread(self, path: str | os.PathLike, n: int) -> Prediction:
        """N windows spread evenly over the song; the file is decoded once, the model runs N times.

        (Seeking N times would decode compressed files up to each offset again: on long Ogg
        files that cost more than the model time it saved.)
        """
        from genrescope.audio.decode import audio_info

        cfg = self.model.feature_config
        info = audio_info(path)
        if n * cfg.window_s >= info.frames / info.sr:
            return self.predict(path)
        notes: list[str] = []
        y = np.concatenate(list(iter_audio_blocks(path, sr=cfg.sr, notes=notes)))  # (n_samples,) at the model's rate
        win = _window_samples(self.model)
        parts = []
        for start in np.linspace(0, max(len(y) - win, 0), n).astype(np.int64):
            run = self.analyse(iter([y[start:start + win]]), path=path)
            parts.append(self.result(str(path), list(run), run.duration_s, [], offset=start / cfg.sr))
        tls = [p.timeline for p in parts]
        tl = Timeline(np.concatenate([t.start_s for t in tls]), np.concatenate([t.end_s for t in tls]),
                      np.concatenate([t.probs for t in tls]), tls[0].labels, tls[0].multi_label)
        return self.rank(Prediction(str(path), parts[0].model, len(y) / cfg.sr, timeline=tl, warnings=notes))

    def analyse(self, blocks, *, path="audio", flush_s: float | None = None) -> Analysis:
        """The one analysis path over float32 blocks at the model's rate (see :class:`Analysis`)."""
        return Analysis(self.model, blocks, path=path, batch_size=self.batch_size, flush_s=flush_s)

    def result(self, name: str, chunks: list[Chunk], duration_s: float, warnings: list[str], *,
               offset: float = 0.0, seconds: dict | None = None) -> Prediction:
        """The ranked :class:`Prediction` of the windows in ``chunks``."""
        m = self.model
        c = join(chunks)
        tl = Timeline(c.start_s + offset, c.end_s + offset, c.probs, self.labels, m.multi_label)
        if c.rows is not None and getattr(m, "predict_track", None) is not None and len(c.rows):
            tl.track_probs = m.predict_track(c.rows)
        pred = Prediction(name, m.name, duration_s, timeline=tl, seconds=dict(seconds or {}),
                          warnings=list(warnings), precision=getattr(m, "precision", None),
                          backend=getattr(m, "backend", None))
        if c.tags is not None:
            pred.tag_timeline = Timeline(tl.start_s, tl.end_s, c.tags, list(m.tag_labels), True)
        return self.rank(pred)

    def rank(self, pred: Prediction) -> Prediction:
        """Fill ``genres`` (and ``tags`` for taggers) from the timeline's track aggregate."""
        from genrescope.inference.taxonomy import split_genres_and_tags

        track = pred.timeline.track()
        genres, tags = split_genres_and_tags(self.labels, track, self.model.genre_labels)
        if pred.tag_timeline is not None:  # a genre head: every tag of the taggers behind it, ranked
            tl = pred.tag_timeline
            _, tags = split_genres_and_tags(tl.labels, tl.track(), [])
        pred.genres, pred.tags = genres, tags
        return pred


def _window_samples(model) -> int:
    """Samples whose features are exactly one model window (one frame more makes two windows)."""
    cfg = model.feature_config
    if model.kind == "table":
        return int(round(cfg.window_s * cfg.sr))
    frames = getattr(model, "window_frames", None) or cfg.window_frames
    return (frames - 1) * cfg.hop_length + (0 if cfg.center else cfg.n_fft)


def predict_files(predictor: Predictor, paths: list[Path], *, jobs: int = 1, progress: bool = False
                  ) -> list[Prediction]:
    """Predict many files; a file that fails becomes a Prediction with ``error`` set."""
    def one(p: Path) -> Prediction:
        try:
            return predictor.predict(p)
        except GenrescopeError as e:
            return Prediction(str(p), predictor.name, error=str(e))

    if jobs <= 1 and len(paths) > 1 and predictor.model.workers > 1:
        jobs = 2  # the next file decodes while this one's windows fill every core's model calls
    elif jobs <= 1 and len(paths) > 1:
        # two files in flight: the next one decodes while this one is in the model, which still
        # runs one call at a time (each call already has every core it was given)
        import copy

        from genrescope.inference.inference_model import one_call_at_a_time

        predictor = copy.copy(predictor)
        predictor.model, jobs = one_call_at_a_time(predictor.model), 2
    if jobs <= 1 or len(paths) <= 1:
        return [one(p) for p in progress_iter(paths, len(paths), progress)]
    from concurrent.futures import ThreadPoolExecutor

    # ONNX Runtime and numpy's FFT release the GIL, so threads scale without copying the model
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(progress_iter(pool.map(one, paths), len(paths), progress))
