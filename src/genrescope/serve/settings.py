"""The web app's settings: every limit the server enforces, in one frozen dataclass.

``genrescope serve`` fills it from its flags (``commands/serve_cmd.py``); tests and the
load bench build it directly. Nothing here imports the web stack, so the CLI can read
its defaults without importing FastAPI.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

#: The page's files (HTML, JavaScript, icons, vendored libraries), served and exported from here.
STATIC_DIR = Path(__file__).resolve().parent / "static"


def _default_jobs() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class Settings:
    """What the server offers and how much it accepts.

    Parameters
    ----------
    model : str
        The model the page starts with: ``"default"``, a shipped name, or a file in ``model_dir``.
    model_dir : Path or None
        A folder whose ONNX exports (``*.onnx``, searched recursively) are offered as well.
    runtime : str
        ``"onnx"`` (default) or ``"torch"`` (then ``.safetensors`` checkpoints are offered too).
    backend, precision : str
        Engine and arithmetic of the ONNX models (see :func:`genrescope.inference.backends.open_session`):
        ``"auto"`` (OpenVINO when installed, else ONNX Runtime), ``"onnxruntime"`` (exact float32) or
        ``"openvino"`` (precision ``"auto"``: bfloat16 where the CPU has it).
    max_upload_mb : float
        Largest accepted upload in MiB (413 above).
    max_duration_s : float
        Longest accepted audio in seconds (413 above).
    max_jobs : int
        Files analysed at the same time (the size of the inference worker pool).
    max_queue : int
        Uploads that may wait for a worker; any more are refused with 429.
    threads : int or None
        Runtime threads per model call (None: the CPU cores shared out among ``max_jobs``).
    max_live : int
        Microphone streams at the same time; any more are refused.
    live_seconds : float
        How many seconds of microphone audio each live estimate looks at.
    live_interval_s : float
        Seconds of received microphone audio between two live estimates.
    tmp_dir : Path or None
        Parent of the private upload folder (None: the system's temporary folder).
    allowed_hosts : tuple of str
        Host names the ``Host`` header may carry (DNS rebinding) besides the loopback names
        (``localhost``, ``127.0.0.1``, ``::1``), ``host`` and any IP address.
    host : str
        The address the server listens on (added to the allowed hosts).
    allow_origins : tuple of str
        Other origins (``https://example.org``) whose pages may POST and open the live socket;
        ``"*"`` allows any. A request's own origin is always allowed.
    max_connections : int
        Open HTTP connections; when full, the longest-idle one waiting for its request makes
        room, and with none idle a new connection gets 503.
    header_timeout_s : float
        Seconds a connection has to send a request's line and headers.
    body_idle_s : float
        Longest pause inside a request body, in seconds (408 after it).
    body_timeout_s : float
        Seconds a whole upload body may take (408 after it).
    max_pending_mb : float
        MiB of uploads being received or waiting at the same time (503 past it).
    job_timeout_s : float
        Seconds one analysis may run (503 after it); a job whose client left stops at once.
    max_job_mb : float
        Memory one analysis may use, in MiB (413 past it): a file whose header's estimate is
        over it is refused before decoding, and a worker process whose resident memory grows
        by more than this during a job is stopped (:mod:`genrescope.serve.workers`).
    isolate_jobs : bool
        Run each analysis in a worker process whose memory is measured (default). False: in
        threads of the server, where only the header's estimate bounds the memory.
    max_models : int
        Models kept loaded at once (the least recently used one is dropped; the default stays).
    live_idle_s : float
        Seconds a live socket may go without audio before it is closed.
    """

    model: str = "default"
    model_dir: Path | None = None
    runtime: str = "onnx"
    backend: str = "auto"
    precision: str = "auto"
    max_upload_mb: float = 200.0
    max_duration_s: float = 1800.0
    max_jobs: int = field(default_factory=_default_jobs)
    max_queue: int = 16
    threads: int | None = None
    max_live: int = 4
    live_seconds: float = 6.0
    live_interval_s: float = 1.0
    tmp_dir: Path | None = None
    allowed_hosts: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    allow_origins: tuple[str, ...] = ()
    max_connections: int = 256
    header_timeout_s: float = 10.0
    body_idle_s: float = 10.0
    body_timeout_s: float = 300.0
    max_pending_mb: float = 2048.0
    job_timeout_s: float = 300.0
    max_job_mb: float = 1024.0
    isolate_jobs: bool = True
    max_models: int = 4
    live_idle_s: float = 15.0

    def __post_init__(self) -> None:
        from genrescope.errors import GenrescopeError

        if self.max_upload_mb <= 0 or self.max_duration_s <= 0:
            raise GenrescopeError("serve: --max-upload-mb and --max-duration must be > 0")
        if self.max_jobs < 1 or self.max_queue < 0 or self.max_live < 0:
            raise GenrescopeError("serve: --max-jobs must be >= 1, --max-queue and --max-live >= 0")
        if self.live_seconds < 1.0 or self.live_interval_s <= 0:
            raise GenrescopeError("serve: --live-seconds must be >= 1 and --live-interval > 0")
        timeouts = (self.header_timeout_s, self.body_idle_s, self.body_timeout_s, self.job_timeout_s, self.live_idle_s)
        if min(timeouts) <= 0 or self.max_pending_mb < self.max_upload_mb or self.max_job_mb <= 0:
            raise GenrescopeError("serve: timeouts and --max-job-mb must be > 0, --max-pending-mb >= --max-upload-mb")
        if self.max_connections < 2 or self.max_models < 1:
            raise GenrescopeError("serve: --max-connections must be >= 2 and --max-models >= 1")
        if self.runtime not in ("onnx", "torch"):
            raise GenrescopeError(f"serve: runtime must be onnx or torch, got {self.runtime!r}")
        from genrescope.inference.backends import check_backend

        check_backend(self.backend, self.precision)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def model_threads(self) -> int:
        """Intra-op threads of each model: the cores shared out among the parallel jobs."""
        if self.threads:
            return self.threads
        return max(1, (os.cpu_count() or 1) // self.max_jobs)

    @property
    def hosts(self) -> frozenset[str]:
        """Host names (lower case, no port) the ``Host`` header may name."""
        names = ("localhost", "127.0.0.1", "::1", self.host, *self.allowed_hosts)
        return frozenset(h.lower().strip("[]") for h in names)

    @property
    def max_body_bytes(self) -> int:
        """Largest request body: the file, the other form fields and the multipart framing."""
        return self.max_upload_bytes + (64 << 10)

    def limits(self) -> dict:
        """The limits as the page and ``GET /api/config`` show them."""
        return {"max_upload_bytes": self.max_upload_bytes, "max_duration_s": self.max_duration_s,
                "max_jobs": self.max_jobs, "max_queue": self.max_queue, "max_live": self.max_live,
                "job_timeout_s": self.job_timeout_s, "max_job_mb": self.max_job_mb,
                "body_timeout_s": self.body_timeout_s, "live_idle_s": self.live_idle_s}
