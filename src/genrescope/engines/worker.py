"""What every engine does inside a worker: one BLAS thread, the task opened once, and a
bad file turned into an error message instead of the end of the run.

numpy is not imported here: the thread limit set through the environment only works if
numpy is loaded after it, so workers unpickle the task (whose module may import numpy)
only after :func:`limit_threads`.
"""
from __future__ import annotations

import os
import pickle
from typing import Any, Callable

from genrescope.errors import GenrescopeError

#: Worker deaths a file may be in flight for before it is reported as failed.
MAX_TRIES = 3

_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def cpu_count() -> int:
    """Cores this process may run on (respects taskset / cgroup affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def limit_threads() -> None:
    """One BLAS / OpenMP thread in this process: in a worker, the processes are the parallelism."""
    for var in _THREAD_ENV:
        os.environ[var] = "1"
    try:  # numpy may already be loaded; then only this helps
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(1)


def open_task(blob: bytes) -> Callable:
    """In a fresh worker: limit threads, then unpickle the task and open it with one thread."""
    limit_threads()
    return pickle.loads(blob).open(1)


def run_one(fn: Callable, path: str, args: tuple = ()) -> tuple[Any, str | None]:
    """``(fn(path, *args), None)``, or ``(None, error message)``: never raises for a bad file."""
    try:
        return fn(path, *args), None
    except GenrescopeError as e:
        return None, str(e)
    except (OSError, MemoryError) as e:  # vanished mid-run, out of memory
        return None, f"{path}: {getattr(e, 'strerror', None) or e}"
    except Exception as e:  # noqa: BLE001 - one odd file (a decoder's ValueError) must not end a long run
        return None, f"{path}: unexpected {type(e).__name__}: {e}"
