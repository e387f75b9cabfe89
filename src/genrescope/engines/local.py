"""The local engine: a task in worker processes on this machine.

Workers are spawned (a fresh interpreter whose BLAS has not started its threads yet, and
no copy of this process's model sessions), each opens the task once and runs one file at a
time; the caller receives the results as they finish. A small queue (two files per
worker) keeps results streaming and memory flat. A worker that dies (a decoder crash, the
OOM killer) breaks the pool: the files that were in flight are retried in a fresh pool,
and a file in flight during :data:`~genrescope.engines.worker.MAX_TRIES` breaks is
reported as failed.
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import threading
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Iterator, Sequence

from genrescope.engines.worker import MAX_TRIES, open_task, run_one

_WORKER: dict = {}


def _init(blob: bytes, parent: int, from_main_thread: bool) -> None:
    from genrescope.lifeline import exit_with_parent

    exit_with_parent(parent, death_signal=from_main_thread)  # a killed parent leaves no worker behind
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the workers
    _WORKER["fn"] = open_task(blob)


def _work(path: str, args: tuple):
    return run_one(_WORKER["fn"], path, args)


def run_local(paths: list[str], task, jobs: int = 1, args: Sequence[tuple] | None = None
              ) -> Iterator[tuple[int, Any, str | None]]:
    """Run ``task`` on ``paths``; yield ``(index, result, error)`` in completion order.

    ``jobs`` 1 with a task that does not ``isolate`` (or a single file) is the one-process
    loop: no pool, the task opened here with every thread. Otherwise ``jobs`` worker processes.
    """
    if not paths:
        return
    extra = list(args) if args is not None else [()] * len(paths)
    if not getattr(task, "isolate", False) and (jobs <= 1 or len(paths) <= 1):
        fn = task.open(None)
        for i, p in enumerate(paths):
            yield (i, *run_one(fn, p, extra[i]))
        return
    jobs = max(1, min(jobs, len(paths)))
    blob = pickle.dumps(task)
    tries = [0] * len(paths)
    todo = list(reversed(range(len(paths))))
    while todo:
        crashed = yield from _pool_pass(paths, extra, todo, blob, jobs)
        for i in crashed:
            tries[i] += 1
            if tries[i] >= MAX_TRIES:
                yield i, None, (f"{paths[i]}: the worker process running it died {MAX_TRIES} times "
                                f"(decoder crash or out of memory)")
            else:
                todo.append(i)


def _pool_pass(paths: list[str], extra: list[tuple], todo: list[int], blob: bytes, jobs: int):
    """Run until ``todo`` is empty or the pool breaks; returns the indices in flight at a break."""
    main = threading.current_thread() is threading.main_thread()  # the thread that will start the workers
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_init,
                               initargs=(blob, os.getpid(), main))
    running: dict = {}  # future -> index
    finished = False  # the pass ended by itself (done, or a broken pool), not by Ctrl-C or the consumer
    try:
        while todo or running:
            while todo and len(running) < 2 * jobs:
                i = todo.pop()
                try:
                    running[pool.submit(_work, paths[i], extra[i])] = i
                except BrokenProcessPool:
                    todo.append(i)  # never started: not the culprit
                    raise
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                result, error = fut.result()  # BrokenProcessPool when a worker died
                yield running.pop(fut), result, error
        finished = True
        return []
    except BrokenProcessPool:
        finished = True
        return list(running.values())
    except BaseException:  # Ctrl-C, or the consumer stopped: end the workers now, not after the queue
        _stop_workers(pool)
        raise
    finally:
        # Wait for the pool's manager thread when nothing is left to do: one still closing its
        # wake-up pipe at interpreter exit races concurrent.futures' atexit hook, which then
        # writes to the closed pipe ("OSError: [Errno 9] Bad file descriptor" after a good run).
        pool.shutdown(wait=finished, cancel_futures=True)


def _stop_workers(ex: ProcessPoolExecutor) -> None:
    """Cancel what is queued and terminate the workers (a temp file they leave is swept later)."""
    terminate = getattr(ex, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:
        terminate()
        return
    procs = list((getattr(ex, "_processes", None) or {}).values())  # shutdown() forgets them
    ex.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        proc.terminate()
