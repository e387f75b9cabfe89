"""Engines: one per-file function mapped over many files, in local worker processes or on
a Ray cluster, with the files of a dead worker retried. ``genrescope tag``, ``embed`` and
``features`` all run through :func:`map_files`.

A *task* is a small picklable object with two members:

* ``open(threads)``: runs once per worker (load a model, make a cache handle) and returns
  the per-file function ``fn(path, *args) -> result``; it raises for a bad file
  (:class:`~genrescope.errors.GenrescopeError` preferred), and the engine turns that into
  the file's error message;
* ``isolate`` (bool): True runs even a one-job run in a worker process, so that float32
  results (OpenBLAS rounds differently with 1 and N threads) never depend on the engine or
  on ``jobs``; False lets ``jobs=1`` run in this process with every thread.

Workers run one BLAS thread and open the task with ``threads=1``: the processes are the
parallelism. Results come back in completion order as ``(index into paths, result,
error)``; :func:`in_order` puts them back in input order.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator, Sequence

from genrescope.errors import GenrescopeError

ENGINES = ("local", "ray")


def map_files(paths: Sequence[str], task, *, engine: str = "local", jobs: int = 0, address: str | None = None,
              args: Sequence[tuple] | None = None) -> Iterator[tuple[int, Any, str | None]]:
    """Run ``task`` on every path; yield ``(index, result, None)`` or ``(index, None, error)``.

    Parameters
    ----------
    paths : sequence of str
        The files, one call each (the same path twice is two calls).
    task : object
        See the module docstring.
    engine : {"local", "ray"}
        Worker processes on this machine, or Ray actors (:mod:`genrescope.engines.ray_cluster`).
    jobs : int
        Local: worker processes (0: every core; 1: one process, see ``isolate``).
        Ray: actors (0: one per CPU of the cluster, or of this machine for a local one).
    address : str or None
        With ``engine="ray"``: the cluster to join (``HOST:6379``); None starts a local one.
    args : sequence of tuple, optional
        Extra positional arguments of each call, as long as ``paths``.
    """
    if jobs < 0:
        raise GenrescopeError(f"--jobs must be >= 0, got {jobs}")
    if args is not None and len(args) != len(paths):
        raise GenrescopeError(f"map_files: {len(args)} argument tuples for {len(paths)} paths")
    if engine == "ray":
        from genrescope.engines.ray_cluster import run_ray

        return run_ray(list(paths), task, args=args, workers=jobs or None, address=address)
    if engine != "local":
        raise GenrescopeError(f"--engine {engine}: expected {' or '.join(ENGINES)}")
    if address:
        raise GenrescopeError("--ray-address needs --engine ray")
    from genrescope.engines.local import run_local
    from genrescope.engines.worker import cpu_count

    return run_local(list(paths), task, jobs or cpu_count(), args=args)


def in_order(results: Iterable[tuple[int, Any, str | None]], n: int) -> Iterator[tuple[int, Any, str | None]]:
    """The ``(index, result, error)`` of :func:`map_files` in index order 0..n-1, each as soon
    as it and every one before it have arrived (the ones that came early wait here)."""
    early: dict[int, tuple] = {}
    want = 0
    for item in results:
        early[item[0]] = item
        while want in early:
            yield early.pop(want)
            want += 1
    if want != n:
        raise GenrescopeError(f"engine: {n - want} of {n} results never came back")
