"""Load on `genrescope serve`: N concurrent clients uploading 30 s clips for a bounded time.

Starts the server itself on 127.0.0.1 (a free port), so all traffic stays on loopback.
Reports requests per second, p50/p95 latency, how many answers were 200 / 429 / other,
the server's peak memory (VmHWM), and, on the idle server before the load, how soon the
streaming endpoint sends its first windows. The baseline, measured in the same run, is the same
clip predicted in-process with one Predictor, one after another: the ratio says what the
HTTP layer, the upload and the worker pool cost or gain.

    python bench/serve_load.py [--clients 8] [--seconds 20] [--model default]
"""
from __future__ import annotations

import argparse
import io
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def make_clip(path: Path) -> str:
    import soundfile as sf

    clip = SHARED / "gtzan" / "clips" / "rock" / "rock.00000.wav"
    if clip.is_file():
        path.write_bytes(clip.read_bytes())
        return "GTZAN rock.00000 (30 s, 22050 Hz wav)"
    from genrescope.testing import synth_music

    sf.write(str(path), synth_music(30.0, 22050), 22050)
    return "generated music (30 s, 22050 Hz wav)"


def multipart(path: Path, model: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    buf = io.BytesIO()
    for name, value in (("model", model),):
        buf.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n".encode())
    buf.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{path.name}\"\r\n"
              f"Content-Type: audio/wav\r\n\r\n".encode())
    buf.write(path.read_bytes())
    buf.write(f"\r\n--{boundary}--\r\n".encode())
    return buf.getvalue(), f"multipart/form-data; boundary={boundary}"


def start_server(model: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "genrescope", "serve", "--port", "0", "--model", model,
                             "--max-queue", "64"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    m = re.search(r"(http://127\.0\.0\.1:\d+)", line)
    if not m:
        proc.kill()
        raise SystemExit(f"server did not start: {line}{proc.stderr.read()[-2000:]}")
    return proc, m.group(1)


def first_results(url: str, body: bytes, ctype: str) -> tuple[float, float]:
    """Seconds until POST /api/predict/stream's first windows event, and until its result (idle server)."""
    import http.client
    from urllib.parse import urlsplit

    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    t = time.perf_counter()
    conn.request("POST", "/api/predict/stream", body=body, headers={"Content-Type": ctype})
    resp = conn.getresponse()
    first = None
    for line in resp:
        event = line.split(b'"event":"', 1)[-1].split(b'"', 1)[0]
        if event == b"windows" and first is None:
            first = time.perf_counter() - t
        if event in (b"result", b"error"):
            break
    total = time.perf_counter() - t
    conn.close()
    return (first if first is not None else float("nan")), total


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--model", default="default")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        clip = Path(d) / "clip.wav"
        what = make_clip(clip)
        body, ctype = multipart(clip, args.model)

        from genrescope.inference.predict import Predictor

        pred = Predictor(args.model)
        pred.predict(clip)
        t0 = time.perf_counter()
        n_base = 0
        while time.perf_counter() - t0 < min(8.0, args.seconds / 2):
            pred.predict(clip)
            n_base += 1
        base_rps = n_base / (time.perf_counter() - t0)

        proc, url = start_server(args.model)
        try:
            first_s, whole_s = first_results(url, body, ctype)
            lat, codes, lock = [], {}, threading.Lock()
            stop_at = time.perf_counter() + args.seconds

            def client():
                while time.perf_counter() < stop_at:
                    req = urllib.request.Request(url + "/api/predict", data=body, headers={"Content-Type": ctype})
                    t = time.perf_counter()
                    try:
                        with urllib.request.urlopen(req, timeout=120) as r:
                            r.read()
                            code = r.status
                    except urllib.error.HTTPError as e:
                        code = e.code
                        if code == 429:
                            time.sleep(0.2)  # a polite client backs off
                    except OSError:
                        code = -1
                    with lock:
                        codes[code] = codes.get(code, 0) + 1
                        if code == 200:
                            lat.append(time.perf_counter() - t)

            start = time.perf_counter()
            threads = [threading.Thread(target=client) for _ in range(args.clients)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            wall = time.perf_counter() - start
            rss = peak_rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    ok = codes.get(200, 0)
    print(f"input: {what}; model {args.model}; {args.clients} clients for {args.seconds:g} s on {os.cpu_count()} cores")
    print("answers: " + ", ".join(f"{k}: {v}" for k, v in sorted(codes.items())))
    if lat:
        q = statistics.quantiles(lat, n=20) if len(lat) >= 2 else [lat[0]] * 19
        print(f"throughput: {ok / wall:.2f} requests/s ({ok / wall * 30:.0f}x real time)")
        print(f"latency: p50 {statistics.median(lat):.2f} s, p95 {q[18]:.2f} s, max {max(lat):.2f} s")
    print(f"streaming endpoint, idle server: first windows after {first_s:.2f} s, whole result after {whole_s:.2f} s")
    print(f"server peak memory (VmHWM): {rss:.0f} MB")
    print(f"baseline, in-process Predictor one after another: {base_rps:.2f} predictions/s")
    if lat:
        print(f"ratio server / baseline throughput: {ok / wall / base_rps:.2f}")
    return 0 if codes.get(-1, 0) == 0 and all(c in (200, 429) for c in codes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
