"""The Ray engine: a task on a Ray cluster (``pip install 'genrescope[ray]'``).

``ray.init(address=...)`` joins an existing cluster; with no address a local one is
started with ``workers`` CPUs. Each worker is an actor that opens the task once; files
are dealt out to the actors a few at a time (dynamic sharding: a slow file never holds up
a whole shard) and results stream back to this process. An actor that dies is restarted
by Ray and the files it held are retried on whichever actor is free; a file that was in
flight during :data:`~genrescope.engines.worker.MAX_TRIES` deaths is reported as failed.

The workers read the files by path, so every node must see them at the same path (a
shared mount); relative paths are made absolute here first. ``PYTHONPATH`` and every
``GENRESCOPE_*`` variable of this process are passed on to the workers.
"""
from __future__ import annotations

import os
import pickle
import time
from typing import Any, Iterator, Sequence

from genrescope.engines.worker import MAX_TRIES, open_task, run_one
from genrescope.errors import GenrescopeError

#: Pings (0.2 s apart) an actor gets to come back after a death before the run gives up.
MAX_PINGS = 300

#: Files in flight per actor: one running, one queued, so an actor never waits for the driver.
IN_FLIGHT = 2


class _Worker:
    def __init__(self, blob: bytes):
        self.fn = open_task(blob)

    def run(self, path: str, args: tuple):
        return run_one(self.fn, path, args)

    def pid(self) -> int:
        return os.getpid()


def _ray():
    try:
        import ray
    except ImportError as e:
        raise GenrescopeError("--engine ray needs Ray: pip install 'genrescope[ray]'") from e
    return ray


def start(ray, workers: int | None, address: str | None) -> bool:
    """Connect to (or start) Ray; True when this call started it."""
    if ray.is_initialized():
        return False
    env = {k: v for k, v in os.environ.items() if k.startswith("GENRESCOPE_") or k == "PYTHONPATH"}
    kw = dict(include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env} if env else None)
    try:
        if address:
            ray.init(address=address, **kw)
        else:
            ray.init(num_cpus=workers or os.cpu_count() or 1, **kw)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise GenrescopeError(f"--engine ray: cannot start or reach Ray at {address or 'a local cluster'} ({e})") from e
    return True


def run_ray(paths: list[str], task, *, args: Sequence[tuple] | None = None, workers: int | None = None,
            address: str | None = None) -> Iterator[tuple[int, Any, str | None]]:
    """Run ``task`` on ``paths`` on Ray; yield ``(index, result, error)`` in completion order.

    ``workers``: actors to start (None: one per CPU of the cluster).
    """
    if not paths:
        return
    ray = _ray()
    started = start(ray, workers, address)
    try:
        n = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        actor_cls = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0)(_Worker)
        blob = pickle.dumps(task)  # small (names, not models): inlined, so a restarted actor always has it
        actors = [actor_cls.remote(blob) for _ in range(min(n, len(paths)))]
        extra = args if args is not None else [()] * len(paths)
        calls = [(os.path.abspath(p), tuple(a)) for p, a in zip(paths, extra)]
        for i, result, error in _dispatch(ray, actors, calls):
            # errors name the file as the caller gave it, as the local engine's do
            yield i, result, error if error is None else error.replace(calls[i][0], paths[i])
    finally:
        if started:
            ray.shutdown()


def _dispatch(ray, actors: list, calls: list[tuple[str, tuple]]):
    """Keep every live actor :data:`IN_FLIGHT` files busy; an actor that failed gets no more
    files until a ping says it is back (Ray restarts it; while it restarts, calls fail at
    once with ActorUnavailableError, which does not count against the file)."""
    unavailable = getattr(ray.exceptions, "ActorUnavailableError", ())
    todo = list(reversed(range(len(calls))))
    tries = [0] * len(calls)
    running: dict = {}  # ObjectRef -> (actor index, call index)
    pings: dict = {}  # ObjectRef -> actor index: the actor is restarting
    fails: dict[int, int] = {}  # actor index -> pings that failed in a row
    load = [0] * len(actors)
    while todo or running:
        down = set(pings.values())
        for a in range(len(actors)):
            while todo and load[a] < IN_FLIGHT and a not in down:
                i = todo.pop()
                running[actors[a].run.remote(*calls[i])] = (a, i)
                load[a] += 1
        ready, _ = ray.wait(list(running) + list(pings), num_returns=1)
        ref = ready[0]
        if ref in pings:
            _check_ping(ray, actors, pings, ref, fails)
            continue
        a, i = running.pop(ref)
        load[a] -= 1
        try:
            result, error = ray.get(ref)
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as e:
            if a not in pings.values():
                pings[actors[a].pid.remote()] = a
            if not isinstance(e, unavailable):
                tries[i] += 1
            if tries[i] >= MAX_TRIES:
                yield i, None, f"{calls[i][0]}: the Ray worker running it died {MAX_TRIES} times ({type(e).__name__})"
            else:
                todo.append(i)
            continue
        yield i, result, error


def _check_ping(ray, actors: list, pings: dict, ref, fails: dict) -> None:
    """The actor of ``ref`` is back, or still restarting: then ask again shortly."""
    a = pings.pop(ref)
    try:
        ray.get(ref)
    except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as e:
        failed = fails[a] = fails.get(a, 0) + 1
        if failed >= MAX_PINGS:
            raise GenrescopeError(f"--engine ray: a worker did not come back after {failed} tries ({e})") from e
        time.sleep(0.2)  # a restart takes seconds: do not spin
        pings[actors[a].pid.remote()] = a
    else:
        fails.pop(a, None)
