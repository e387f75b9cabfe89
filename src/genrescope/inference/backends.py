"""Engines that execute an ONNX graph: ONNX Runtime (exact float32) and OpenVINO.

``auto`` (the default) is the fastest one installed: OpenVINO when the ``fast`` extra is
installed (``pip install 'genrescope[fast]'``), else ONNX Runtime. On a CPU with bfloat16
instructions (AVX512_BF16, AMX) OpenVINO runs the graph's matrix products in bfloat16 by
default (``--precision fp32`` keeps float32); elsewhere it runs exact float32. The
precision a session really runs is read back from the compiled model and travels with every
prediction (``"precision"`` in the JSON), so it never changes silently.

Both refuse a graph whose weights hold NaN or infinity (:func:`check_finite_weights`).
Both sessions answer the same two calls: :attr:`metadata` (the graph's ``metadata_props``)
and ``run(names, x)`` (the named outputs, or all of them, for one input batch). Both may be
called from several threads at once.
"""
from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from genrescope.engines.worker import cpu_count
from genrescope.errors import CheckpointError, GenrescopeError
from genrescope.inference.onnx_weights import check_finite_weights

#: Names accepted by ``--backend`` and ``Predictor(backend=...)``; the first is the default.
#: ``auto``: OpenVINO when it is installed, else ONNX Runtime (:func:`resolve_backend`).
BACKENDS = ("auto", "onnxruntime", "openvino")
#: ``auto``: the backend's fastest precision on this CPU (ONNX Runtime: always fp32).
PRECISIONS = ("auto", "fp32", "bf16")
DEFAULT_BACKEND = BACKENDS[0]


def check_backend(backend: str, precision: str = "auto") -> None:
    """Raise GenrescopeError for an unknown backend or precision, or a pair that cannot run."""
    if backend not in BACKENDS:
        raise GenrescopeError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if precision not in PRECISIONS:
        raise GenrescopeError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if resolve_backend(backend) == "onnxruntime" and precision == "bf16":
        raise GenrescopeError("onnxruntime runs float32 only; bf16 needs OpenVINO: pip install 'genrescope[fast]'"
                              " and --backend openvino")


def resolve_backend(backend: str) -> str:
    """The engine ``backend`` names: ``auto`` is OpenVINO when it is installed, else ONNX Runtime."""
    if backend != "auto":
        return backend
    return "openvino" if _openvino_installed() else "onnxruntime"


@lru_cache(maxsize=1)
def _openvino_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def available_backends() -> list[str]:
    """The backends installed here (onnxruntime always; openvino with the ``fast`` extra)."""
    return ["onnxruntime"] + ["openvino"] * _openvino_installed()


def open_session(path: str | os.PathLike, *, backend: str = DEFAULT_BACKEND, precision: str = "auto",
                 threads: int | None = None):
    """An :class:`OrtSession` or :class:`OpenVinoSession` of the ONNX file ``path``.

    Parameters
    ----------
    path : path
        An ONNX file.
    backend : str
        ``"auto"`` (OpenVINO when installed, else ONNX Runtime), ``"onnxruntime"`` or ``"openvino"``.
    precision : str
        ``"auto"``, ``"fp32"`` or ``"bf16"`` (openvino only; an error where the CPU has no bfloat16).
    threads : int, optional
        Threads of one call (default: the backend's choice, every core).
    """
    check_backend(backend, precision)
    if resolve_backend(backend) == "openvino":
        return OpenVinoSession(path, precision=precision, threads=threads)
    return OrtSession(path, threads=threads)


class OrtSession:
    """ONNX Runtime on the CPU, float32."""

    backend, precision = "onnxruntime", "fp32"

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None,
                 providers: list[str] | None = None):
        import onnxruntime as ort

        check_finite_weights(path)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(os.fspath(path), sess_options=opts,
                                                providers=providers or ["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own (non-exported) exception types
            raise CheckpointError(f"{path}: not a readable ONNX model ({e})") from e
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata = {k: meta[k] for k in meta}
        self.input_name = self.session.get_inputs()[0].name

    def run(self, names: list[str] | None, x: np.ndarray) -> list[np.ndarray]:
        return self.session.run(names, {self.input_name: x})


_CORE_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _ov_cached_core():
    try:
        ov = _import_openvino()
    except ImportError as e:
        raise GenrescopeError("--backend openvino needs OpenVINO: pip install 'genrescope[fast]'") from e
    return ov.Core()


def _import_openvino():
    """``openvino``, imported without its model-conversion tools (``openvino.tools.ovc``: about 0.06 s
    of every start-up, and genrescope reads ONNX files itself). ``openvino`` imports them only if
    it can; a later ``import openvino.tools.ovc`` still works."""
    import sys

    blocked = "openvino.tools.ovc" not in sys.modules and "openvino" not in sys.modules
    if blocked:
        sys.modules["openvino.tools.ovc"] = None  # makes openvino's own `from openvino.tools.ovc import` fail
    try:
        import openvino
    finally:
        if blocked and sys.modules.get("openvino.tools.ovc", 0) is None:
            del sys.modules["openvino.tools.ovc"]
    return openvino


def _ov_core():
    """The one OpenVINO Core of this process (members loading in parallel threads share it)."""
    with _CORE_LOCK:
        return _ov_cached_core()


def cpu_has_bf16() -> bool:
    """True when OpenVINO can run bfloat16 on this CPU (False without OpenVINO)."""
    try:
        return "BF16" in _ov_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except GenrescopeError:
        return False


class OpenVinoSession:
    """OpenVINO on the CPU, bfloat16 where the CPU has it (``precision="auto"``), else float32.

    ``threads`` threads serve one call; the compiled model has one stream per ``threads``
    cores, so that several callers (``predict -j 2``, the web workers) run side by side
    instead of queueing, and threads are not pinned, so two sessions in two threads do not
    land on the same core.
    """

    backend = "openvino"

    def __init__(self, path: str | os.PathLike, *, precision: str = "auto", threads: int | None = None):
        core = _ov_core()  # the weights are checked when the graph is compiled (see _compile)
        bf16 = cpu_has_bf16()
        if precision == "bf16" and not bf16:
            raise GenrescopeError("this CPU has no bfloat16 instructions: use --precision fp32")
        want = "bf16" if precision == "bf16" or (precision == "auto" and bf16) else "f32"
        cores = cpu_count()  # the affinity mask: ``taskset -c 0`` gives 1
        streams = max(1, cores // threads) if threads else 1
        config = {"INFERENCE_PRECISION_HINT": want, "NUM_STREAMS": streams, "PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_NUM_THREADS": streams * threads if threads else 0, "ENABLE_CPU_PINNING": False}
        self.compiled, self.metadata = _compile(core, Path(path), config)
        ran = str(self.compiled.get_property("INFERENCE_PRECISION_HINT"))
        self.precision = "bf16" if "bfloat16" in ran or ran == "bf16" else "fp32"
        if self.precision != ("bf16" if want == "bf16" else "fp32"):
            raise GenrescopeError(f"{Path(path).name}: OpenVINO compiled {ran}, not the {want} asked for")
        self.output_names = [o.get_any_name() for o in self.compiled.outputs]
        self._local = threading.local()
        self._requests_lock = threading.Lock()

    def run(self, names: list[str] | None, x: np.ndarray) -> list[np.ndarray]:
        request = getattr(self._local, "request", None)
        if request is None:  # an infer request serves one thread at a time: one per thread
            with self._requests_lock:  # made one at a time (the model-call threads start together)
                request = self._local.request = self.compiled.create_infer_request()
        request.infer({0: x})
        outs = [request.get_output_tensor(i).data.copy() for i in range(len(self.output_names))]
        if names is None:
            return outs
        return [outs[self.output_names.index(n)] for n in names]


def compiled_cache_dir() -> Path | None:
    """Where compiled OpenVINO models are kept: ``$GENRESCOPE_OPENVINO_CACHE`` (``off``: nowhere),
    else ``~/.cache/genrescope/openvino``."""
    env = os.environ.get("GENRESCOPE_OPENVINO_CACHE")
    if env is not None:
        return None if env.strip().lower() in ("", "off", "0", "none") else Path(env).expanduser()
    return Path.home() / ".cache" / "genrescope" / "openvino"


def _compile(core, path: Path, config: dict):
    """(compiled model, the ONNX file's metadata), from the compiled-model cache when it has them.

    Compiling the default model takes about 0.1 s of every start-up; importing it compiled takes
    a fifth of that. An entry is keyed by the ONNX file's bytes (so only a graph that passed
    :func:`check_finite_weights` when it was compiled has one, and a hit needs no second check),
    the compile config, OpenVINO's version and the CPU, written to a temporary file
    and renamed into place (so a reader never sees half of one, with ``-j`` workers
    compiling at once), and an entry that does not import is compiled and written again.
    A cache folder that cannot be written only costs the time.
    """
    import hashlib
    import io
    import json

    import openvino as ov

    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read the model ({e.strerror or e})") from e
    folder = compiled_cache_dir()
    entry = None
    if folder is not None:
        key = hashlib.sha256(data)
        key.update(json.dumps([sorted((k, str(v)) for k, v in config.items()), ov.get_version(),
                               str(core.get_property("CPU", "FULL_DEVICE_NAME")),
                               sorted(map(str, core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")))]).encode())
        entry = folder / f"{key.hexdigest()[:32]}.ovblob"
        try:
            blob = entry.read_bytes()
            n = int.from_bytes(blob[:8], "little")
            metadata = json.loads(blob[8:8 + n])
            return core.import_model(io.BytesIO(blob[8 + n:]), "CPU", config), metadata
        except Exception:  # noqa: BLE001 - no entry yet, or one that does not import: compile it
            pass
    check_finite_weights(path)
    try:
        model = core.read_model(data, b"")
        compiled = core.compile_model(model, "CPU", config)
    except Exception as e:  # OpenVINO raises RuntimeError for anything it cannot read
        raise CheckpointError(f"{path}: OpenVINO cannot load this ONNX model ({e})") from e
    info = model.get_rt_info()
    fw = info["framework"] if "framework" in info else {}
    metadata = {k: fw[k].astype(str) for k in fw}
    if entry is not None:
        _store(entry, compiled, metadata)
    return compiled, metadata


def _store(entry: Path, compiled, metadata: dict) -> None:
    """Write one cache entry (metadata length, metadata JSON, compiled blob) atomically; never raises."""
    import io
    import json
    import tempfile

    tmp = None
    try:
        buf = io.BytesIO()
        compiled.export_model(buf)
        head = json.dumps(metadata).encode()
        entry.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=entry.parent, prefix=".tmp-", suffix=".ovblob")
        with os.fdopen(fd, "wb") as f:
            f.write(len(head).to_bytes(8, "little") + head + buf.getvalue())
        os.replace(tmp, entry)
        tmp = None
    except Exception:  # noqa: BLE001 - a read-only or full cache folder: run uncached
        pass
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


__all__ = ["compiled_cache_dir", "resolve_backend", "BACKENDS", "PRECISIONS", "DEFAULT_BACKEND", "available_backends", "check_backend", "cpu_has_bf16",
           "check_finite_weights", "open_session", "OrtSession", "OpenVinoSession"]
