"""Load a model for inference on ONNX Runtime (default, no torch), OpenVINO or PyTorch.

``runtime="onnx"`` runs the ONNX export on a backend of :mod:`genrescope.inference.backends`
(``backend="onnxruntime"``, exact float32, or ``"openvino"``, bfloat16 where the CPU has it);
``runtime="torch"`` loads the PyTorch checkpoint instead (needs the ``train`` extra). A head
trained on backbone embeddings is composed behind its backbone, on the same backend.

``threads`` is the thread count of one call. None (every core): an ONNX model's calls run on one
thread each, as many side by side as there are cores (``InferenceModel.workers``: a song's
windows are spread over them); an ensemble of separate graphs runs its members side by side.
A number: one call at a time on that many threads.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from genrescope.config import FeatureConfig
from genrescope.errors import GenrescopeError
from genrescope.engines.worker import cpu_count
from genrescope.inference.backends import DEFAULT_BACKEND, check_backend
from genrescope.inference.ensemble import ensemble, share_threads
from genrescope.inference.inference_model import InferenceModel
from genrescope.inference.registry import DEFAULT_MODEL, ENSEMBLES, is_fused, resolve_model_path

RUNTIMES = ("onnx", "torch")


def load_inference_model(model: str | os.PathLike = "default", *, runtime: str = "onnx",
                         threads: int | None = None, backend: str = DEFAULT_BACKEND,
                         precision: str = "auto") -> InferenceModel:
    """Load a model by shipped name or path for :class:`genrescope.inference.predict.Predictor`.

    Parameters
    ----------
    model : str or path
        A shipped name, ``"default"``, a checkpoint or an ONNX export.
    runtime : str
        ``"onnx"`` or ``"torch"``.
    threads : int, optional
        Threads of one call (None: every core).
    backend, precision : str
        The ONNX backend and its precision (see :mod:`genrescope.inference.backends`);
        the loaded model's ``precision`` says what really runs.
    """
    if runtime not in RUNTIMES:
        raise GenrescopeError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    check_backend(backend, precision)
    if runtime == "torch" and (backend not in (DEFAULT_BACKEND, "onnxruntime") or precision == "bf16"):
        raise GenrescopeError("--backend and --precision choose how ONNX exports run; use them with --runtime onnx")
    engine = {"backend": backend, "precision": precision}
    ensemble_name = DEFAULT_MODEL if str(model) == "default" else str(model)
    if ensemble_name in ENSEMBLES and (runtime == "torch" or not is_fused(ensemble_name)):
        name = ensemble_name
        members = ENSEMBLES[name]
        # no thread count given: the members share the cores side by side
        each, parallel = share_threads(threads, len(members)) if runtime == "onnx" else (threads, False)
        return ensemble(name, _load_all(members, runtime=runtime, threads=each, **engine), parallel=parallel)
    name, path = resolve_model_path(model, runtime)
    if path.suffix == ".onnx":
        if threads is None:  # every core: one-thread calls side by side, one per core
            return dataclasses.replace(_from_onnx(name, path, 1, engine), workers=cpu_count())
        return _from_onnx(name, path, threads, engine)
    return _from_torch(name, path, threads)



def _load_all(names, **kw) -> list[InferenceModel]:
    """Load several models at once: building a session is native code that releases the GIL,
    so two members load in about the time of one on two cores."""
    if len(names) < 2 or kw.get("runtime") != "onnx":
        return [load_inference_model(n, **kw) for n in names]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(names)) as pool:
        return list(pool.map(lambda n: load_inference_model(n, **kw), names))


def numpy_blas_one_thread() -> None:
    """Keep numpy's BLAS (the features' mel products) on one thread for the rest of the process.

    The model runtimes bring their own threads; OpenBLAS's idle threads spin for a while after
    each call, and between the model calls of one song they took a core from the model's
    side-by-side members (``genrescope predict``, genre10 on OpenVINO on both cores: model stage
    3.45 s -> 2.05 s for a 4-minute song). The command line, the web app's workers and the tag
    workers call this; a program that uses :class:`~genrescope.inference.predict.Predictor` with
    every core may too. Without threadpoolctl it does nothing.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(1, user_api="blas")


def _from_onnx(name: str, path: Path, threads: int | None, engine: dict) -> InferenceModel:
    from genrescope.inference.onnx_model import OUTPUT_NAME, TAGS_OUTPUT, OnnxModel

    m = OnnxModel(path, threads=threads, **engine)
    multi = m.metadata.get("output_activation", "softmax") == "sigmoid"
    run, tag_labels = m.predict_windows, None
    if m.tag_labels:  # one graph of a head and its taggers: the head's labels, then the tags
        run, tag_labels = (lambda x: m.predict_outputs(x, [OUTPUT_NAME, TAGS_OUTPUT])), list(m.tag_labels)
    im = InferenceModel(name, list(m.labels), m.feature_config, m.input_kind, m.window_frames, multi,
                        run, str(path), "onnx", backend=m.backend, precision=m.precision, tag_labels=tag_labels)
    if m.window_s is None and m.has_frames:
        im.predict_frames, im.frame_hop_s = m.predict_frames, m.frame_hop_s
    track = _track_head(path, m.provenance, threads)
    return _with_backbone(im, m.provenance.get("backbone"), threads=threads,
                          blocks=tuple(m.provenance.get("backbone_blocks") or ("embeddings",)), track_head=track,
                          **engine)


def _track_head(path: Path, provenance: dict, threads: int | None):
    """The pooled-row head beside a learnt window head (``track.onnx``), or None."""
    if provenance.get("pooling") != "mean+std":
        return None
    from genrescope.inference.onnx_model import OnnxModel

    track = path.parent / "track.onnx"
    if not track.is_file():
        raise GenrescopeError(f"{path.parent}: a learnt model needs its track.onnx beside model.onnx")
    return OnnxModel(track, threads=threads)


def _with_backbone(head: InferenceModel, backbone: str | None, track_head=None, **engine) -> InferenceModel:
    """A head trained on backbone embeddings runs behind its backbone (``engine``: threads, backend,
    precision of the backbone, which is the cost)."""
    if not backbone:
        return head
    from genrescope.inference.backbone import head_inference_model

    return head_inference_model(head.name, head, backbone, track_head=track_head, **engine)


def _from_torch(name: str, path: Path, threads: int | None) -> InferenceModel:
    try:
        import torch
    except ImportError as e:
        raise GenrescopeError("--runtime torch needs PyTorch: pip install 'genrescope[train]'") from e
    from genrescope.models.checkpoint import load_checkpoint

    if threads:
        torch.set_num_threads(threads)
    if path.name == "weights.safetensors":  # a converted pretrained tagger (genrescope.models.musicnn)
        return _from_torch_tagger(name, path)
    model, info = load_checkpoint(path)
    fc = info["feature_config"]
    fc = fc if isinstance(fc, FeatureConfig) else FeatureConfig.from_dict(fc)
    cfg = model.config
    multi = getattr(cfg, "output_activation", "softmax") == "sigmoid"

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits = model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
            return (torch.sigmoid(logits) if multi else torch.softmax(logits, -1)).numpy()

    window_frames = None if cfg.window_s is None else fc.window_frames
    im = InferenceModel(name, list(info["labels"]), fc, cfg.kind, window_frames, multi, run, str(path), "torch",
                        backend="torch")
    if cfg.window_s is None and hasattr(model, "forward_frames"):
        def frames(x: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                logits = model.forward_frames(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None])
                return torch.softmax(logits[0], -1).numpy()

        im.predict_frames, im.frame_hop_s = frames, model.frame_stride / fc.frame_rate
    return _with_backbone(im, info.get("backbone"), threads=threads,
                          blocks=tuple(info.get("backbone_blocks") or ("embeddings",)))


def _from_torch_tagger(name: str, path: Path) -> InferenceModel:
    import torch

    from genrescope.models.musicnn import load_musicnn

    model, config = load_musicnn(path.parent)
    fc = FeatureConfig.from_dict(config["features"])

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()

    return InferenceModel(name, list(config["labels"]), fc, "log_mel", fc.window_frames, True, run, str(path), "torch",
                          backend="torch")
