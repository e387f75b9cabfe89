"""The local engine: analyses in worker processes, pipelined with the tag writes.

Each worker process loads the model once and decodes, computes features and runs the
model for one file at a time (one intra-op thread each, so ``-j N`` keeps N cores busy);
the parent receives small result dicts as they finish and does the tag writes, the
journal and the report meanwhile. A worker that dies (a decoder crash, the OOM killer)
breaks the pool: the files that were in flight are retried in a fresh pool, and a file
in flight during :data:`MAX_TRIES` breaks is reported as failed.
"""
from __future__ import annotations

import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Iterator

from genrescope.errors import GenrescopeError
from genrescope.library.core import TagOptions, analyse, make_predictor

#: Pool breaks a file may be in flight for before it is reported as failed.
MAX_TRIES = 3

_WORKER: dict = {}


def analyse_one(predictor, path: str, windows: int) -> tuple[str, dict | None, str | None]:
    """``(path, analysis, None)`` or ``(path, None, error)``: never raises for a bad file."""
    try:
        return path, analyse(predictor, path, windows), None
    except GenrescopeError as e:
        return path, None, str(e)
    except (OSError, MemoryError) as e:  # vanished mid-run, out of memory
        return path, None, f"{path}: {getattr(e, 'strerror', None) or e}"
    except Exception as e:  # noqa: BLE001 - one odd file (a decoder's ValueError) must not end a library run
        return path, None, f"{path}: unexpected {type(e).__name__}: {e}"


def _init(model: str, runtime: str) -> None:
    _WORKER["predictor"] = make_predictor(model, runtime=runtime, threads=1)


def _work(path: str, windows: int):
    return analyse_one(_WORKER["predictor"], path, windows)


def run_local(paths: list[str], opts: TagOptions, jobs: int = 1) -> Iterator[tuple[str, dict | None, str | None]]:
    """Analyse ``paths``; yield ``(path, analysis, error)`` in completion order.

    ``jobs`` 1 is the one-process loop (no pool); more runs that many worker processes.
    """
    if not paths:  # everything came from the journal: no model to load
        return
    if jobs <= 1 or len(paths) <= 1:
        predictor = make_predictor(opts.model, runtime=opts.runtime)
        for p in paths:
            yield analyse_one(predictor, p, opts.windows)
        return
    tries = {p: 0 for p in paths}
    todo = list(reversed(paths))
    while todo:
        crashed = yield from _pool_pass(todo, opts, jobs)
        for p in crashed:
            tries[p] += 1
            if tries[p] >= MAX_TRIES:
                yield p, None, f"{p}: the worker analysing it died {MAX_TRIES} times (decoder crash or out of memory)"
            else:
                todo.append(p)


def _pool_pass(todo: list[str], opts: TagOptions, jobs: int):
    """Run until ``todo`` is empty or the pool breaks; returns the files in flight at a break."""
    pool = ProcessPoolExecutor(max_workers=jobs, initializer=_init, initargs=(opts.model, opts.runtime))
    running: dict = {}
    try:
        while todo or running:
            while todo and len(running) < 2 * jobs:  # a small queue: results stream, memory stays flat
                p = todo.pop()
                try:
                    running[pool.submit(_work, p, opts.windows)] = p
                except BrokenProcessPool:
                    todo.append(p)  # never started: not the culprit
                    raise
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                result = fut.result()  # BrokenProcessPool when a worker died
                del running[fut]
                yield result
        return []
    except BrokenProcessPool:
        return list(running.values())
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


class Progress:
    """Files done, files/s and ETA on stderr (only when stderr is a terminal)."""

    def __init__(self, total: int, enabled: bool = True):
        self.total, self.n, self.t0, self.last = total, 0, time.perf_counter(), 0.0
        self.enabled = enabled and sys.stderr.isatty() and total > 1

    def step(self, k: int = 1) -> None:
        self.n += k
        now = time.perf_counter()
        if not self.enabled or (now - self.last < 0.5 and self.n < self.total):
            return
        self.last = now
        rate = self.n / max(now - self.t0, 1e-9)
        eta = (self.total - self.n) / rate if rate > 0 else 0.0
        print(f"\r{self.n}/{self.total} files  {rate:.2f} files/s  ETA {int(eta // 60)}:{int(eta % 60):02d}   ",
              end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled:
            print(file=sys.stderr)
