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
import http.client
import io
import json
import socket
import statistics
import struct
import threading
import time

import numpy as np

BOUNDARY = "genrescopeAttackBoundary"


# ---------------------------------------------------------------- files
def tone_wav(seconds: float, sr: int = 22050) -> bytes:
    """A 16-bit WAV of a pulsing chord over a little noise."""
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    y = 0.2 * sum(np.sin(2 * np.pi * 220 * r * t) for r in (1.0, 1.25, 1.5)) * np.exp(-5 * (t % 0.5))
    y = (y + 0.02 * np.random.default_rng(0).standard_normal(len(t))).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, y, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def bomb_wav(declared_s: int = 1799, sr: int = 1) -> bytes:
    """An 8-bit mono WAV at ``sr`` Hz (1: refused by its header; 4000: the lowest rate read)
    holding ``declared_s`` seconds of samples (1.8 KB at 1 Hz)."""
    data = np.random.default_rng(0).integers(0, 256, declared_s * sr).astype(np.uint8).tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, sr, sr, 1, 8)
    return (b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE" + b"fmt " +
            struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data)


def bomb_flac(seconds: float = 30.0, sr: int = 655350) -> bytes:
    """A FLAC of 8 channels at ``sr`` Hz (655350: refused by its header; 384000: the highest
    rate read) holding ``seconds`` of silence (compresses to almost nothing)."""
    import soundfile as sf

    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", samplerate=sr, channels=8, format="FLAC", subtype="PCM_16") as f:
        block = np.zeros((sr, 8), np.float32)
        for _ in range(int(seconds)):
            f.write(block)
    return buf.getvalue()


def multipart(data: bytes, name: str = "song.wav", fields: tuple = (), disposition: str | None = None) -> bytes:
    """A multipart/form-data body with the file in the field ``file`` (boundary :data:`BOUNDARY`)."""
    out = b"".join(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                   for k, v in fields)
    disp = disposition or f'form-data; name="file"; filename="{name}"'
    out += f"--{BOUNDARY}\r\nContent-Disposition: {disp}\r\nContent-Type: application/octet-stream\r\n\r\n".encode()
    return out + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def request_head(port: int, path: str, length: int, host: str | None = None, extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {host or f'127.0.0.1:{port}'}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {length}\r\n{extra}\r\n").encode()


def post(port: int, body: bytes, *, path: str = "/api/predict", timeout: float = 60.0,
         headers: dict | None = None) -> tuple[int, dict | str, dict]:
    """(status, JSON body or text, headers) of one multipart POST."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers={
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}", **(headers or {})})
        resp = conn.getresponse()
        raw = resp.read().decode("utf-8", "replace")
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = raw
        return resp.status, payload, {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


# ---------------------------------------------------------------- attackers
class Attacker(threading.Thread):
    """A daemon thread that attacks until :meth:`stop`; ``opened`` counts its connections."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port, self.opened, self._stop_event = port, 0, threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    def stopped(self, wait: float = 0.0) -> bool:
        return self._stop_event.wait(wait)

    def connect(self) -> socket.socket | None:
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        except OSError:
            return None
        self.opened += 1
        return s

    def trickle(self, s: socket.socket, byte: bytes, every_s: float) -> None:
        """Send ``byte`` every ``every_s`` seconds until the server closes or we are stopped."""
        s.setblocking(False)
        while not self.stopped(every_s):
            try:
                if s.recv(4096) == b"":
                    return
            except BlockingIOError:
                pass
            except OSError:
                return
            try:
                s.send(byte)
            except OSError:
                return


class Trickler(Attacker):
    """Open a connection, send :meth:`opening`, then one ``byte`` every ``every_s`` seconds until
    the server closes it; reconnect and start again."""

    byte = b"\0"

    def __init__(self, port: int, every_s: float = 0.5):
        super().__init__(port)
        self.every_s = every_s

    def opening(self) -> bytes:
        raise NotImplementedError

    def run(self) -> None:
        while not self.stopped():
            s = self.connect()
            if s is None:
                self.stopped(0.2)
                continue
            try:
                s.sendall(self.opening())
                self.trickle(s, self.byte, self.every_s)
            except OSError:
                pass
            finally:
                s.close()


class SlowUpload(Trickler):
    """Multipart headers of a 100 MB upload, then one byte every ``every_s`` seconds."""

    def opening(self) -> bytes:
        head = multipart(b"")[:-len(f"\r\n--{BOUNDARY}--\r\n")]
        return request_head(self.port, "/api/predict", 100_000_000) + head + b"RIFF"


class HalfHeaders(Trickler):
    """Half a request line and headers, then one header byte every ``every_s`` seconds; reconnects."""

    byte = b"a"

    def opening(self) -> bytes:
        return f"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nX-Slow: ".encode()


class Bombs(Attacker):
    """Post the decode bombs in turn, as fast as the server answers; ``statuses`` collects (file, status)."""

    def __init__(self, port: int, files: list[tuple[str, bytes]]):
        super().__init__(port)
        self.files, self.statuses = files, []

    def run(self) -> None:
        i = 0
        while not self.stopped():
            name, data = self.files[i % len(self.files)]
            i += 1
            self.opened += 1
            try:
                status, _, _ = post(self.port, multipart(data, name), timeout=120)
            except OSError:
                status = 0
            self.statuses.append((name, status))


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


class IdleLive(Attacker):
    """Open the live socket, say hello, then send nothing until the server closes it (once)."""

    def run(self) -> None:
        from websockets.sync.client import connect

        try:
            with connect(f"ws://127.0.0.1:{self.port}/api/live", open_timeout=10, ping_interval=None) as ws:
                self.opened += 1
                ws.send(json.dumps({"sample_rate": 16000}))
                while not self.stopped():
                    try:
                        ws.recv(timeout=0.5)
                    except TimeoutError:
                        continue
        except Exception:  # closed by the server, or refused
            pass


def live_ready(port: int, timeout: float = 30.0) -> float | None:
    """Seconds until a normal live client gets "ready", retrying when the server is full (1013); None: never."""
    from websockets.sync.client import connect

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        try:
            with connect(f"ws://127.0.0.1:{port}/api/live", open_timeout=timeout, ping_interval=None) as ws:
                ws.send(json.dumps({"sample_rate": 16000}))
                if json.loads(ws.recv(timeout=timeout)).get("event") == "ready":
                    return round(time.perf_counter() - t0, 2)
        except Exception:
            pass
        time.sleep(0.5)
    return None


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
