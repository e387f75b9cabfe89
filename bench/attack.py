"""A normal client's success rate and latency while hostile clients attack the web app.

Loopback only and bounded: the server runs in this process on 127.0.0.1 (port chosen by
the OS), every attacker is a thread with a fixed count of sockets, and the attack lasts as
long as the normal client's requests (each with a timeout), at most ``--max-s`` seconds.

Attackers (all at once):

* ``--slow N`` uploads that send their multipart headers, then one byte every 0.5 s;
* ``--half N`` connections that send half a request's headers, one byte every 0.5 s,
  reconnecting whenever the server closes them;
* ``--bombs N`` clients that post decode bombs in a loop: an 8-bit WAV at 1 Hz declaring
  1799 s (1.8 KB), and a FLAC of 8 channels at 655 kHz holding silence (both refused by
  their headers), and the same two at the edge of what is read: 60 s of 8-bit WAV at 4 kHz
  (each sample becomes 5.5 at the model's rate) and 20 s of 8 channels at 384 kHz;
* ``--idle-ws N`` live sockets that say hello and then send nothing (more than ``max_live``).

The normal client posts a 10 s WAV ``--requests`` times (quiet first, then under attack) and
opens the live socket under attack (retrying while the server says it is full). Compare two checkouts in the same run of the machine::

    git worktree add /tmp/before <commit>
    PYTHONPATH=/tmp/before/src .venv/bin/python bench/attack.py   # before
    .venv/bin/python bench/attack.py                               # after
"""
from __future__ import annotations

import argparse
import json
import statistics
import threading
import time

from genrescope.testing.attackers import (Bombs, HalfHeaders, IdleLive, SlowUpload, bomb_flac, bomb_wav,
                                          live_ready, multipart, post, tone_wav)


# ---------------------------------------------------------------- memory
class PeakMemory(threading.Thread):
    """The peak resident memory (MB) of this process plus ``workers()`` (the server's job
    processes, where the checkout has them), sampled every 50 ms until :meth:`stop`."""

    def __init__(self, workers):
        super().__init__(daemon=True)
        self.workers, self.peak_mb, self._done = workers, 0.0, threading.Event()

    @staticmethod
    def _mb(pid) -> float:
        try:
            with open(f"/proc/{pid}/statm") as f:
                return int(f.read().split()[1]) * 4096 / 1e6
        except (OSError, ValueError):
            return 0.0

    def run(self) -> None:
        while not self._done.wait(0.05):
            self.peak_mb = max(self.peak_mb, self._mb("self") + sum(self._mb(p) for p in self.workers()))

    def stop(self) -> None:
        self._done.set()
        self.join()


# ---------------------------------------------------------------- the run
def normal_client(port: int, body: bytes, n: int, timeout: float) -> list[tuple[int, float]]:
    """(status, seconds) of ``n`` predictions, one after the other."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        try:
            status, _, _ = post(port, body, timeout=timeout)
        except OSError:
            status = 0  # refused, reset or timed out
        out.append((status, time.perf_counter() - t0))
    return out


def summary(results: list[tuple[int, float]]) -> dict:
    ok = [t for s, t in results if s == 200]
    return {"requests": len(results), "ok": len(ok), "success_rate": round(len(ok) / max(1, len(results)), 3),
            "median_s": round(statistics.median(ok), 2) if ok else None, "max_s": round(max(ok), 2) if ok else None,
            "statuses": sorted({s for s, _ in results})}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=4, help="normal predictions per phase")
    ap.add_argument("--slow", type=int, default=24)
    ap.add_argument("--half", type=int, default=300)
    ap.add_argument("--bombs", type=int, default=1)
    ap.add_argument("--idle-ws", type=int, default=6)
    ap.add_argument("--timeout", type=float, default=60.0, help="the normal client's timeout per request")
    ap.add_argument("--max-s", type=float, default=240.0, help="longest attack phase")
    args = ap.parse_args()

    import genrescope
    from genrescope.serve.server import BackgroundServer
    from genrescope.serve.settings import Settings

    body = multipart(tone_wav(10.0))
    bombs = [("bomb_1hz.wav", bomb_wav()), ("bomb_655khz.flac", bomb_flac()),
             ("edge_4khz.wav", bomb_wav(60, sr=4000)), ("edge_384khz.flac", bomb_flac(20.0, sr=384000))]
    print(f"genrescope from {genrescope.__file__}; bombs " + ", ".join(f"{n} {len(d)} B" for n, d in bombs),
          flush=True)
    srv = BackgroundServer(Settings(max_jobs=2, max_queue=16))
    getattr(getattr(srv.app.state, "runner", None), "prestart", lambda: None)()  # as genrescope serve does
    with srv:
        port = srv.sock.getsockname()[1]
        normal_client(port, body, 1, args.timeout)  # warm-up (first run of each model), not counted
        quiet = normal_client(port, body, args.requests, args.timeout)
        attackers = ([SlowUpload(port) for _ in range(args.slow)] + [HalfHeaders(port) for _ in range(args.half)]
                     + [Bombs(port, bombs) for _ in range(args.bombs)] + [IdleLive(port) for _ in range(args.idle_ws)])
        runner_pids = getattr(getattr(srv.app.state, "runner", None), "pids", list)  # absent before the workers
        memory = PeakMemory(runner_pids)
        memory.start()
        t0 = time.perf_counter()
        for a in attackers:
            a.start()
        time.sleep(3.0)  # let the attack take hold
        done: list = []
        runner = threading.Thread(target=lambda: done.extend(normal_client(port, body, args.requests, args.timeout)),
                                  daemon=True)
        runner.start()
        runner.join(args.max_s)
        live = live_ready(port, timeout=30.0)
        attack_s = time.perf_counter() - t0
        for a in attackers:
            a.stop()
        memory.stop()
        opened = {kind.__name__: sum(a.opened for a in attackers if type(a) is kind)
                  for kind in (SlowUpload, HalfHeaders, Bombs, IdleLive)}
        bomb_statuses: dict = {}
        for name, status in (x for a in attackers if isinstance(a, Bombs) for x in a.statuses):
            bomb_statuses.setdefault(name, {}).setdefault(str(status), 0)
            bomb_statuses[name][str(status)] += 1
    result = {"quiet": summary(quiet), "attack": summary(done + [(0, 0.0)] * (args.requests - len(done))),
              "live_ready_s_under_attack": live, "attack_s": round(attack_s, 1), "connections_opened": opened,
              "bomb_statuses": bomb_statuses, "peak_rss_mb_server_and_workers": round(memory.peak_mb)}
    q, a = result["quiet"], result["attack"]
    if q["median_s"] and a["median_s"]:
        result["latency_ratio_attack_vs_quiet"] = round(a["median_s"] / q["median_s"], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
