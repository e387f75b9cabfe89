"""Bounded attackers of the web app, and the files and requests they send: shared by the
connection tests (tests/test_serve_security.py) and the attack benchmark (bench/attack.py).

Loopback only and bounded: every attacker connects to 127.0.0.1 only, is a daemon thread
with a fixed number of sockets, and stops on :meth:`Attacker.stop`.

* :class:`SlowUpload`: multipart headers of an upload, then one byte every ``every_s`` seconds;
* :class:`HalfHeaders`: half a request's headers, one byte every ``every_s`` seconds,
  reconnecting whenever the server closes the connection;
* :class:`Bombs`: decode bombs (:func:`bomb_wav`, :func:`bomb_flac`) posted in a loop;
* :class:`IdleLive`: a live socket that says hello and then sends nothing.
"""
from __future__ import annotations

import http.client
import io
import json
import socket
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
