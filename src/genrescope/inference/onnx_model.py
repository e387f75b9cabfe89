"""Run an exported genrescope model on ONNX Runtime, without torch.

An export (see :mod:`genrescope.training.export`) is one ``.onnx`` file whose metadata carries
everything needed to use it: the :class:`~genrescope.config.FeatureConfig`, the labels,
the input kind and window length. Its graph maps

* input ``features``: (N, n_bins, T) float32 (or (N, n_columns) for a table model) to
* output ``probabilities``: (N, G), softmax applied inside the graph, and, for models
  that predict per time step, ``frame_probabilities``: (N, T', G), one distribution
  every ``frame_hop_s`` seconds.

Metadata keys (all values are strings; JSON where noted): ``format``
(``"genrescope-onnx"``), ``format_version``, ``genrescope_version``, ``model_name``,
``model_config`` (JSON), ``feature_config`` (JSON), ``labels`` (JSON list),
``input_kind``, ``n_bins``, ``window_s`` (JSON number or null: null means whole songs),
``min_frames``, ``dynamic_time`` (``"true"``/``"false"``), ``input_frames`` (the traced
T, the only one allowed when time is not dynamic), ``outputs`` (JSON list),
``frame_hop_s`` (JSON, frame models only), ``output_activation`` (``"softmax"``),
``provenance`` (JSON, when exported from a checkpoint).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from genrescope.errors import CheckpointError, GenrescopeError
from genrescope.inference.onnx_metadata import ONNX_FORMAT_VERSION, check_graph, read_onnx_metadata, read_tag_labels

ONNX_FORMAT = "genrescope-onnx"
INPUT_NAME = "features"
OUTPUT_NAME = "probabilities"
#: one graph of a head and its taggers (training/fused_export.py) also outputs their merged tags,
#: named by the metadata's ``tag_labels``
TAGS_OUTPUT = "tags"
FRAMES_OUTPUT_NAME = "frame_probabilities"


class OnnxModel:
    """An exported model and the metadata that says how to feed it.

    Parameters
    ----------
    path : path
        A ``.onnx`` file written by :func:`genrescope.training.export.export_onnx`.
    providers : list of str, optional
        ONNX Runtime execution providers (default: CPU).
    batch_size : int
        Windows per ONNX Runtime call in :meth:`predict_windows`.
    threads : int, optional
        Threads of one call (default: the backend's choice, one per core).
    backend, precision : str
        The engine (:mod:`genrescope.inference.backends`): ``"onnxruntime"`` (the default here:
        exact float32), ``"openvino"`` or ``"auto"`` (OpenVINO when installed), at ``"auto"``,
        ``"fp32"`` or ``"bf16"``.
    """

    def __init__(self, path: str | os.PathLike, *, providers: list[str] | None = None, batch_size: int = 4,
                 threads: int | None = None, backend: str = "onnxruntime", precision: str = "auto"):
        from genrescope.inference.backends import OrtSession, open_session

        self.path = Path(path)
        if not self.path.is_file():
            raise CheckpointError(f"{self.path}: no such ONNX model file")
        if providers:
            self.engine = OrtSession(self.path, threads=threads, providers=providers)
        else:
            self.engine = open_session(self.path, backend=backend, precision=precision, threads=threads)
        #: the ONNX Runtime session (None on another backend)
        self.session = getattr(self.engine, "session", None)
        self.backend, self.precision = self.engine.backend, self.engine.precision
        meta = self.engine.metadata
        if meta.get("format") != ONNX_FORMAT:
            raise CheckpointError(f"{self.path}: not a genrescope ONNX export (no {ONNX_FORMAT!r} metadata)")
        try:  # a model file is input too: every key and the graph's shapes are checked
            vars(self).update(read_onnx_metadata(meta))
            if self.session is not None:
                check_graph({i.name: i.shape for i in self.session.get_inputs()},
                            {o.name: o.shape for o in self.session.get_outputs()}, output_names=self.outputs,
                            n_classes=len(self.labels), n_bins=self.n_bins)
        except GenrescopeError as e:
            raise CheckpointError(f"{self.path}: malformed genrescope metadata ({e})") from e
        self.batch_size = batch_size
        self.tag_labels: list[str] = []
        if TAGS_OUTPUT in self.outputs:
            try:
                self.tag_labels = read_tag_labels(meta)
            except GenrescopeError as e:
                raise CheckpointError(f"{self.path}: malformed genrescope metadata ({e})") from e

    # ------------------------------------------------------------ properties
    @property
    def n_classes(self) -> int:
        return len(self.labels)

    @property
    def has_frames(self) -> bool:
        """True when the export also returns per-time-step probabilities."""
        return FRAMES_OUTPUT_NAME in self.outputs

    @property
    def window_frames(self) -> int | None:
        """Frames of one model window (None for whole-song models)."""
        return None if self.window_s is None else self.feature_config.window_frames

    def __repr__(self) -> str:
        win = "whole songs" if self.window_s is None else f"{self.window_s:g} s windows"
        return f"OnnxModel({self.model_name!r}, {self.input_kind} x {self.n_bins}, {win}, {self.n_classes} classes)"

    # ------------------------------------------------------------ running
    def _check(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if self.input_kind == "table":
            if x.ndim != 2 or x.shape[1] != self.n_bins:
                raise GenrescopeError(f"{self.model_name}: expected table rows (N, {self.n_bins}), got {x.shape}")
            return x
        if x.ndim != 3 or x.shape[1] != self.n_bins:
            raise GenrescopeError(f"{self.model_name}: expected {self.input_kind} windows (N, {self.n_bins}, T), "
                                  f"got {x.shape}")
        t = x.shape[2]
        if not self.dynamic_time and t != self.input_frames:
            raise GenrescopeError(f"{self.model_name}: this export takes exactly T={self.input_frames} frames, got {t}")
        if t < self.min_frames:
            raise GenrescopeError(f"{self.model_name}: needs at least {self.min_frames} frames, got {t}")
        return x

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every output of the graph for one batch, by name."""
        outs = self.engine.run(None, self._check(x))
        return dict(zip(self.outputs, outs))

    def predict_windows(self, windows: np.ndarray, *, batch_size: int | None = None) -> np.ndarray:
        """Class probabilities of windows.

        Parameters
        ----------
        windows : np.ndarray
            (N, n_bins, T) features (e.g. from :func:`genrescope.features.windows.slice_windows`),
            or (N, n_columns) rows for a table model.

        Returns
        -------
        np.ndarray
            (N, G) float32, rows summing to 1.
        """
        out = self.predict_outputs(windows, [OUTPUT_NAME], batch_size=batch_size)
        if out.shape[1] != self.n_classes:  # a graph with symbolic output width
            raise CheckpointError(f"{self.model_name}: the graph gave {out.shape[1:]} outputs for "
                                  f"{self.n_classes} labels")
        return out

    def predict_outputs(self, windows: np.ndarray, names: list[str], *, batch_size: int | None = None) -> np.ndarray:
        """The named outputs of windows side by side: (N, sum of their widths) float32, in batches."""
        x = self._check(windows)
        bs = batch_size or self.batch_size
        if len(x) == 0:
            width = self.n_classes + (len(self.tag_labels) if TAGS_OUTPUT in names else 0)
            return np.zeros((0, width), np.float32)
        out = np.concatenate([np.concatenate(self.engine.run(names, x[i:i + bs]), axis=1)
                              for i in range(0, len(x), bs)]).astype(np.float32, copy=False)
        if out.ndim != 2:
            raise CheckpointError(f"{self.model_name}: the graph gave outputs of shape {out.shape[1:]}")
        return out

    def predict_frames(self, x: np.ndarray) -> np.ndarray:
        """Per-time-step probabilities of a frame model.

        Parameters
        ----------
        x : np.ndarray
            (n_bins, T) features of a whole song, or a batch (N, n_bins, T).

        Returns
        -------
        np.ndarray
            (T', G), or (N, T', G) for a batch; one row every :attr:`frame_hop_s` seconds.
        """
        if not self.has_frames:
            raise GenrescopeError(f"{self.model_name}: this export has no per-frame output")
        single = np.ndim(x) == 2
        x = self._check(x[None] if single else x)
        out = self.engine.run([FRAMES_OUTPUT_NAME], x)[0]
        return out[0] if single else out


__all__ = ["OnnxModel", "INPUT_NAME", "OUTPUT_NAME", "TAGS_OUTPUT", "FRAMES_OUTPUT_NAME", "ONNX_FORMAT", "ONNX_FORMAT_VERSION"]
