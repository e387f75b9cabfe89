"""The Ray engine: the same analyses on a Ray cluster (``pip install 'genrescope[ray]'``).

``ray.init(address=...)`` joins an existing cluster; with no address a local one is
started with ``workers`` CPUs. Each worker is an actor that loads the model once; files
are dealt out to the actors a few at a time (dynamic sharding: a slow file never holds up
a whole shard) and results stream back to this process, which writes the tags, the
journal and the report exactly as the local engine does. An actor that dies is restarted
by Ray and the files it held are retried on whichever actor is free; a file that was
in flight during :data:`MAX_TRIES` deaths is reported as failed.
"""
from __future__ import annotations

import os
from typing import Iterator

from genrescope.errors import GenrescopeError
from genrescope.library.core import PREDICTOR_HOOK, TagOptions, make_predictor
from genrescope.library.engine import MAX_TRIES, analyse_one

#: Pings (0.2 s apart) an actor gets to come back after a death before the run gives up.
MAX_PINGS = 300

#: Files in flight per actor: one running, one queued, so an actor never waits for the driver.
IN_FLIGHT = 2


class _Worker:
    def __init__(self, model: str, runtime: str):
        self.predictor = make_predictor(model, runtime=runtime, threads=1)

    def analyse(self, path: str, windows: int):
        return analyse_one(self.predictor, path, windows)

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
    env = {k: os.environ[k] for k in (PREDICTOR_HOOK, "PYTHONPATH") if k in os.environ}
    kw = dict(include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env} if env else None)
    try:
        if address:
            ray.init(address=address, **kw)
        else:
            ray.init(num_cpus=workers or os.cpu_count() or 1, **kw)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise GenrescopeError(f"--engine ray: cannot start or reach Ray at {address or 'a local cluster'} ({e})") from e
    return True


def run_ray(paths: list[str], opts: TagOptions, *, workers: int | None = None, address: str | None = None
            ) -> Iterator[tuple[str, dict | None, str | None]]:
    """Analyse ``paths`` on Ray; yield ``(path, analysis, error)`` in completion order."""
    ray = _ray()
    started = start(ray, workers, address)
    try:
        n = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        actor_cls = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0)(_Worker)
        actors = [actor_cls.remote(opts.model, opts.runtime) for _ in range(min(n, max(1, len(paths))))]
        yield from _dispatch(ray, actors, list(reversed(paths)), opts.windows)
    finally:
        if started:
            ray.shutdown()


def _dispatch(ray, actors: list, todo: list[str], windows: int):
    """Keep every live actor :data:`IN_FLIGHT` files busy; an actor that failed gets no more
    files until a ping says it is back (Ray restarts it; while it restarts, calls fail at
    once with ActorUnavailableError, which does not count against the file)."""
    unavailable = getattr(ray.exceptions, "ActorUnavailableError", ())
    tries: dict[str, int] = {}
    running: dict = {}  # ObjectRef -> (actor index, path)
    pings: dict = {}  # ObjectRef -> actor index: the actor is restarting
    fails: dict[int, int] = {}  # actor index -> pings that failed in a row
    load = [0] * len(actors)
    while todo or running:
        down = set(pings.values())
        for i in range(len(actors)):
            while todo and load[i] < IN_FLIGHT and i not in down:
                p = todo.pop()
                running[actors[i].analyse.remote(p, windows)] = (i, p)
                load[i] += 1
        ready, _ = ray.wait(list(running) + list(pings), num_returns=1)
        ref = ready[0]
        if ref in pings:
            _check_ping(ray, actors, pings, ref, fails)
            continue
        i, p = running.pop(ref)
        load[i] -= 1
        try:
            yield ray.get(ref)
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as e:
            if i not in pings.values():
                pings[actors[i].pid.remote()] = i
            if not isinstance(e, unavailable):
                tries[p] = tries.get(p, 0) + 1
            if tries.get(p, 0) >= MAX_TRIES:
                yield p, None, f"{p}: the Ray worker analysing it died {MAX_TRIES} times ({type(e).__name__})"
            else:
                todo.append(p)


def _check_ping(ray, actors: list, pings: dict, ref, fails: dict) -> None:
    """The actor of ``ref`` is back, or still restarting: then ask again shortly."""
    import time

    i = pings.pop(ref)
    try:
        ray.get(ref)
    except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as e:
        failed = fails[i] = fails.get(i, 0) + 1
        if failed >= MAX_PINGS:
            raise GenrescopeError(f"--engine ray: a worker did not come back after {failed} tries ({e})") from e
        time.sleep(0.2)  # a restart takes seconds: do not spin
        pings[actors[i].pid.remote()] = i
    else:
        fails.pop(i, None)
