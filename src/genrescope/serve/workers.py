"""Where the analyses run: worker processes whose memory is watched, or threads of the server.

:class:`ProcessJobs` (the default) runs each job in one of at most ``max_jobs`` worker
processes, started as ``python -c`` with ``genrescope serve`` (:meth:`ProcessJobs.prestart`)
or else when a job finds none idle (about a second), and kept for the next jobs. A worker
holds its own :class:`~genrescope.serve.model_catalog.ModelCatalog` (the default model is loaded
and run once on silence when it starts) and runs one job at a time: :func:`~genrescope.serve.jobs.predict_job` or a
:class:`~genrescope.serve.jobs.StreamJob`, the code that runs in a thread otherwise. Jobs go to
the worker as a :class:`JobRequest`. The server's thread that handed the job over blocks on
the worker's socket and relays its answer, stream events and log lines. One watch thread
looks at every busy worker each :data:`POLL_S` seconds (memory can only be sampled: no kernel
limit on one process's resident memory is open to an unprivileged server), tells a worker when
its client has left (SIGUSR1: it stops at its next model call), and kills one that is past a
limit, which ends its job's wait with the reason:

* memory: once the job's model is loaded, the worker's resident memory (``/proc``) may grow
  by ``max_job_mb``; past that the worker is killed, the job answers 413, and a fresh worker
  starts for the next job. Threads of one process cannot be measured apart, which is why a
  job gets a process: the header's estimate (:func:`~genrescope.serve.jobs.check_header`)
  is checked first, the measurement holds whatever the estimate missed (a model whose
  layers are larger than its input says, a decoder's own buffers);
* time: the worker checks its deadline before every model call (503); one stuck between two
  calls (in a decoder, say), or not stopping after its client left, is killed
  :data:`KILL_GRACE_S` seconds later.

The server keeps its own catalog for ``GET /api/models/...``, the in-browser models and the
live microphone, whose memory ``live_seconds`` bounds. :class:`ThreadJobs` runs jobs in the
pool's threads instead (``Settings(isolate_jobs=False)``): no process to start, no memory
measured beyond the header's estimate; tests that replace a loaded model in place use it.
Where ``/proc`` is missing (not Linux) the workers run without the memory watch.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from genrescope.errors import GenrescopeError
from genrescope.serve.jobs import (Budget, JobCancelled, JobFailed, JobMemoryError, JobTimeoutError, StreamJob,
                                   check_header, error_answer, predict_job)
from genrescope.serve.upload import Upload

log = logging.getLogger(__name__)

#: Seconds between two looks of the watch thread at every busy worker (its memory, its client, its deadline).
POLL_S = 0.01
#: Seconds past the deadline, or after its client left, before a worker that has not stopped is killed.
KILL_GRACE_S = 5.0
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes(pid: int) -> int | None:
    """Resident memory of process ``pid`` in bytes (None where ``/proc`` cannot tell)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


@dataclass(frozen=True)
class JobRequest:
    """One job as the server sends it to a worker process (pickled over the worker's socket).

    Attributes
    ----------
    kind : str
        ``"predict"`` (one answer) or ``"stream"`` (events as the analysis goes).
    model_id, path, filename, size, top
        The model, the upload on disk, the client's name for it, its size, genres to list.
    seconds, remaining_s : float
        The job's time budget and what is left of it when it is sent.
    """

    kind: str
    model_id: str
    path: str
    filename: str
    size: int
    top: int | None
    seconds: float
    remaining_s: float


class ThreadJobs:
    """Jobs in the threads of the server's pool (no memory measured; see the module text)."""

    def __init__(self, catalog, settings):
        self.catalog, self.settings = catalog, settings

    def predict(self, model_id: str, upload: Upload, top: int | None, budget: Budget) -> dict:
        return predict_job(self.catalog, model_id, upload, top, self.settings, budget)

    def stream(self, model_id: str, upload: Upload, top: int | None, emit, budget: Budget) -> None:
        StreamJob(self.catalog, model_id, upload, top, self.settings, emit, budget)()

    def close(self) -> None:
        pass

    def prestart(self) -> None:
        pass

    def pids(self) -> list[int]:
        return []


class ProcessJobs:
    """Jobs in worker processes (at most one per thread of the job pool), watched for memory and time.

    Workers start with :meth:`prestart` or when a job finds none idle (that job waits about a
    second), and a worker that was killed is replaced at once, so the next job finds one warm.

    Parameters
    ----------
    settings : Settings
        The server's settings: the workers' catalogs and the jobs' budgets come from them.
    """

    def __init__(self, settings):
        self.settings = settings
        self._idle: list[_Worker] = []
        self._workers: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._watched: set[_Watched] = set()
        self._watcher: threading.Thread | None = None

    def predict(self, model_id: str, upload: Upload, top: int | None, budget: Budget) -> dict:
        """:func:`~genrescope.serve.jobs.predict_job` in a worker; raises like it."""
        return self._run("predict", model_id, upload, top, budget, None)

    def stream(self, model_id: str, upload: Upload, top: int | None, emit, budget: Budget) -> None:
        """A :class:`~genrescope.serve.jobs.StreamJob` in a worker; every error is an event."""
        try:
            self._run("stream", model_id, upload, top, budget, emit)
        except JobCancelled:
            log.info("analysis of %s stopped: the client left", upload.filename)
        except GenrescopeError as e:
            status, message = error_answer(e, upload)
            emit({"event": "error", "status": status, "error": message})

    def close(self) -> None:
        """Stop every worker (the server is shutting down)."""
        with self._lock:
            self._closed, workers = True, list(self._workers)
            self._workers.clear()
            self._idle.clear()
        for w in workers:
            w.close()

    def prestart(self) -> None:
        """Start ``max_jobs`` workers now, in the background, so that no job waits for one."""
        with self._lock:
            while len(self._workers) < self.settings.max_jobs and not self._closed:
                self._idle.append(self._new())

    def pids(self) -> list[int]:
        """Process ids of the workers alive now."""
        with self._lock:
            return sorted(w.pid for w in self._workers if w.alive())

    def _take(self) -> _Worker:
        """An idle worker, or a new one; one that died or kept more than a job's budget is dropped."""
        limit = self.settings.max_job_mb * (1 << 20)
        stale = []
        with self._lock:
            while self._idle:
                w = self._idle.pop()
                if w.alive() and not w.grown(limit):
                    break
                stale.append(w)
            else:
                w = self._new()
        for old in stale:
            self._retire(old)
        return w

    def _new(self) -> _Worker:  # with the lock held
        if self._closed:
            raise GenrescopeError("the server is shutting down")
        w = _Worker(self.settings)
        self._workers.add(w)
        return w

    def _give_back(self, w: _Worker) -> None:
        if w.alive():
            with self._lock:
                if not self._closed:
                    self._idle.append(w)
                    return
        self._retire(w)  # killed over its budget, or died: a fresh worker, warm for the next job
        with self._lock:
            if not self._closed:
                self._idle.append(self._new())

    def _retire(self, w: _Worker) -> None:
        with self._lock:
            self._workers.discard(w)
        w.close()

    def _run(self, kind: str, model_id: str, upload: Upload, top, budget: Budget, emit):
        """Send the job to a worker and wait for its answer. The wait blocks on the worker's socket;
        the one watch thread (:meth:`_watch_all`) samples every busy worker's memory, deadline and
        client, and kills a worker that is past one of them, which ends the wait with that reason."""
        w = self._take()
        job = _Watched(w, budget)
        w.send(JobRequest(kind, model_id, str(upload.path), upload.filename, upload.size, top, budget.seconds,
                          budget.deadline - time.monotonic()))
        self._watch_start(job)
        try:
            while True:
                msg = w.receive(None)  # blocks until a message, or the socket's end (a killed worker)
                if job.reason is not None:
                    raise job.reason
                if msg is None:
                    if not w.alive():
                        log.error("an analysis worker (pid %s) died with exit code %s", w.pid, w.exitcode())
                        raise _WorkerDied()
                    continue
                if msg[0] == "event":
                    emit(msg[1])
                elif msg[0] in ("result", "done"):
                    return msg[1]
                elif msg[0] == "cancelled":
                    raise JobCancelled()
                elif msg[0] == "error":
                    raise JobFailed(msg[1], msg[2])
        except _WorkerDied:
            raise JobFailed(500, "the analysis stopped unexpectedly (see the server log)") from None
        finally:
            self._watch_stop(job)
            self._give_back(w)

    # ---------------------------------------------------------------- the one watch thread
    def _watch_start(self, job: "_Watched") -> None:
        with self._lock:
            self._watched.add(job)
            if self._watcher is None or not self._watcher.is_alive():
                self._watcher = threading.Thread(target=self._watch_all, name="genrescope-job-watch", daemon=True)
                self._watcher.start()

    def _watch_stop(self, job: "_Watched") -> None:
        with self._lock:
            self._watched.discard(job)

    def _watch_all(self) -> None:
        """Every :data:`POLL_S`: each busy worker's memory, deadline, client and life; ends when idle."""
        while True:
            with self._lock:
                jobs = list(self._watched)
                if not jobs or self._closed:
                    self._watcher = None
                    return
            for job in jobs:
                if job.reason is None:
                    job.reason = self._verdict(job)
                    if job.reason is not None:
                        job.worker.kill()  # its socket ends: the job's wait returns and raises the reason
            time.sleep(POLL_S)

    def _verdict(self, job: "_Watched") -> Exception | None:
        """Why ``job``'s worker must be killed now, or None. Asks a worker whose client left to stop first."""
        w, budget = job.worker, job.budget
        if not w.alive():
            return None  # the job's wait sees the end of the socket and says so
        if budget.stop.is_set() and job.left_at is None:
            job.left_at = time.monotonic()
        if job.left_at is not None and w.loaded and not w.stopped:
            w.stop()  # the worker stops at its next model call
        limit_mb = self.settings.max_job_mb
        used = w.job_growth()
        if used is not None and used > limit_mb * (1 << 20):
            log.warning("analysis worker %s killed: it used %.0f MiB more than when the job started (limit %g MiB)",
                        w.pid, used / (1 << 20), limit_mb)
            return JobMemoryError(f"the analysis needed more than the limit of {limit_mb:g} MiB of memory")
        now = time.monotonic()
        if now > budget.deadline + KILL_GRACE_S:
            return JobTimeoutError(f"the analysis took longer than the limit of {budget.seconds:g} s")
        if job.left_at is not None and now > job.left_at + KILL_GRACE_S:
            return JobCancelled()
        return None


@dataclass(eq=False)
class _Watched:
    """A job the watch thread looks after: its worker, its budget, and why it was stopped."""

    worker: "_Worker"
    budget: Budget
    left_at: float | None = None  # when its client left
    reason: Exception | None = None  # set by the watch thread before it kills the worker


class _WorkerDied(Exception):
    pass


class _Worker:
    """One worker process and the socket to it (used by one job at a time).

    Started as ``python -c`` with the socket's descriptor, not with :mod:`multiprocessing`:
    fork would copy the locks of the server's threads, and spawn imports the server's main
    module again (a script without a ``__main__`` guard would start servers without end).
    """

    def __init__(self, settings):
        import subprocess
        import sys
        from multiprocessing.connection import Connection

        ours, theirs = socket.socketpair()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # the server's genrescope
        main = threading.current_thread() is threading.main_thread()  # PR_SET_PDEATHSIG follows this thread
        code = ("import signal; signal.signal(signal.SIGUSR1, signal.SIG_IGN); "  # until the worker sets its own
                f"from genrescope.lifeline import exit_with_parent; exit_with_parent({os.getpid()}, "
                f"death_signal={main}); "  # a killed server leaves no worker behind
                f"from genrescope.serve.workers import worker_main; worker_main({theirs.fileno()})")
        self.proc = subprocess.Popen([sys.executable, "-c", code], pass_fds=(theirs.fileno(),), env=env,
                                     stdin=subprocess.DEVNULL)
        theirs.close()
        self.conn = Connection(ours.detach())
        self.pid = self.proc.pid
        self.ready_rss: int | None = None  # resident memory once started, its default model loaded
        self.base_rss: int | None = None  # ... once the current job's model is loaded
        self.loaded = self.stopped = False  # the current job has its model (and can be stopped); was told to stop
        self.send(("settings", settings))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def exitcode(self):
        return self.proc.poll()

    def stop(self) -> None:
        """Ask the worker to stop its job at its next model call (its client has left). Only
        once the job has said "loaded": before, the worker may not have its handler yet, and
        it clears the request when a job starts."""
        self.stopped = True
        try:
            os.kill(self.pid, signal.SIGUSR1)
        except ProcessLookupError:
            pass

    def grown(self, limit: float) -> bool:
        """Whether the idle worker holds more than ``limit`` bytes over its memory at start."""
        rss = resident_bytes(self.pid)
        return self.ready_rss is not None and rss is not None and rss - self.ready_rss > limit

    def job_growth(self) -> int | None:
        rss = resident_bytes(self.pid)
        return None if rss is None or self.base_rss is None else rss - self.base_rss

    def send(self, msg) -> None:
        self.base_rss, self.loaded, self.stopped = None, False, False
        try:
            self.conn.send(msg)
        except OSError:  # died since: the next look says so
            pass

    def receive(self, timeout: float):
        """The next message that is not a log line, or None after ``timeout`` seconds."""
        try:
            while self.conn.poll(timeout):
                msg = self.conn.recv()
                if msg[0] == "log":
                    logging.getLogger(msg[2]).log(msg[1], "%s", msg[3])
                elif msg[0] == "ready":
                    self.ready_rss = msg[1]
                elif msg[0] == "loaded":
                    self.base_rss, self.loaded = msg[1], True
                else:
                    return msg
                timeout = 0
        except (EOFError, OSError):
            self._wait(1.0)
        return None

    def kill(self) -> None:
        self.proc.kill()
        self._wait(5.0)

    def close(self) -> None:
        self.conn.close()  # the worker's recv ends: it exits
        if not self._wait(2.0):
            self.kill()

    def _wait(self, seconds: float) -> bool:
        import subprocess

        try:
            self.proc.wait(seconds)
        except subprocess.TimeoutExpired:
            return False
        return True


# ---------------------------------------------------------------- inside the worker process
class _PipeLog(logging.Handler):
    """Sends the worker's log records to the server, which logs them as its own."""

    def __init__(self, conn, lock):
        super().__init__()
        self.conn, self.send_lock = conn, lock

    def emit(self, record: logging.LogRecord) -> None:
        try:
            with self.send_lock:  # not self.lock: Handler.handle holds that one around emit
                self.conn.send(("log", record.levelno, record.name, record.getMessage()))
        except Exception:  # the pipe is gone: nobody to tell
            pass


def worker_main(fd: int) -> None:
    """The worker process: load the default model, then run the jobs that arrive on socket ``fd``
    until it closes."""
    from multiprocessing.connection import Connection

    from genrescope.inference.runtimes import numpy_blas_one_thread
    from genrescope.serve.model_catalog import ModelCatalog

    conn = Connection(fd)
    stop = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C stops the server, which closes the socket
    lock = threading.Lock()
    root = logging.getLogger("genrescope")
    root.addHandler(_PipeLog(conn, lock))
    root.setLevel(logging.INFO)

    def send(msg):
        with lock:
            conn.send(msg)

    try:
        _, settings = conn.recv()
    except (EOFError, OSError):
        return
    numpy_blas_one_thread()  # the worker's cores go to its model runtime's threads
    catalog = ModelCatalog(settings.model, settings.model_dir, runtime=settings.runtime,
                           threads=settings.model_threads, max_models=settings.max_models,
                           backend=settings.backend, precision=settings.precision)
    try:
        _warm_up(catalog.get(catalog.default))
    except GenrescopeError as e:  # answered by every job that needs it
        log.error("%s", e)
    send(("ready", resident_bytes(os.getpid())))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        stop.clear()
        send(_run_job(job, catalog, settings, stop, send))
        _trim()


def _warm_up(predictor) -> None:
    """One analysis of 10 s of silence, so that what a model's first run sets up once (the
    runtime's kernels and arena, the decoder's libraries) is not counted as the first job's."""
    import numpy as np
    import soxr  # noqa: F401  (the decoder's resampler, imported on first use otherwise)

    from genrescope.audio import decode  # noqa: F401

    sr = predictor.model.feature_config.sr
    try:
        list(predictor.analyse([np.zeros(10 * sr, np.float32)], path="warm-up"))
    except GenrescopeError as e:  # a model that wants more audio: its first job sets up the rest
        log.debug("warm-up: %s", e)


def _run_job(job: JobRequest, catalog, settings, stop, send) -> tuple:
    kind, model_id, top = job.kind, job.model_id, job.top
    upload = Upload(Path(job.path), job.filename, job.size)
    budget = Budget(job.seconds, remaining_s=job.remaining_s, stop=stop)
    try:
        predictor = catalog.get(model_id)  # the model's own memory is the worker's (its first run is the job's)
        # the header's estimate answers before the memory watch starts: reading a header is no job, and a
        # tiny budget must get the estimate's clear answer, not a race with the watch
        check_header(upload, settings, predictor.model)
        send(("loaded", resident_bytes(os.getpid())))
        if kind == "predict":
            return ("result", predict_job(catalog, model_id, upload, top, settings, budget))
        StreamJob(catalog, model_id, upload, top, settings, lambda ev: send(("event", ev)), budget)()
        return ("done", None)
    except JobCancelled:
        return ("cancelled", None)
    except MemoryError:
        return ("error", 413, "the analysis ran out of memory")  # an allocation failed
    except GenrescopeError as e:
        return ("error", *error_answer(e, upload))
    except Exception:
        log.exception("analysis of an upload failed")
        return ("error", 500, "internal error (see the server log)")


def _trim() -> None:
    """Hand the heap that the job freed back to the system, so the next job's baseline is low."""
    import ctypes

    try:
        ctypes.CDLL(None).malloc_trim(0)
    except AttributeError:  # not glibc
        pass
