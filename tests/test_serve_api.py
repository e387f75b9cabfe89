"""The web app's HTTP API and live WebSocket, through FastAPI's TestClient (no network).

Needs the ``web`` extra and httpx; skipped without them.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed (pip install 'genrescope[web]')")
pytest.importorskip("httpx", reason="fastapi.testclient needs httpx")

from fastapi.testclient import TestClient  # noqa: E402

from genrescope.inference.predict import Predictor  # noqa: E402
from genrescope.inference.registry import pretrained_names, pretrained_root  # noqa: E402
from genrescope.serve.app import create_app  # noqa: E402
from genrescope.serve.settings import Settings  # noqa: E402
from genrescope.serve.upload import client_name, safe_suffix  # noqa: E402
from genrescope.features.windows import window_starts  # noqa: E402

SR = 22050
#: The server accepts only its own host names (DNS rebinding); TestClient's default is "testserver".
LOCAL = "http://127.0.0.1"


def _tone_mix(duration: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    """A chord that pulses on the beat, over a little noise: (n,) float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration * sr)) / sr
    chord = sum(np.sin(2 * np.pi * 220 * r * t) for r in (1.0, 1.25, 1.5))
    y = 0.2 * chord * np.exp(-5 * (t % 0.5)) + 0.02 * rng.standard_normal(len(t))
    return y.astype(np.float32)


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory) -> Path:
    """Good and bad uploads, generated."""
    import soundfile as sf

    d = tmp_path_factory.mktemp("serve_audio")
    sf.write(d / "song.wav", _tone_mix(7.3), SR, subtype="PCM_16")
    sf.write(d / "song.flac", _tone_mix(4.0, 44100, seed=1), 44100)
    sf.write(d / "short.wav", _tone_mix(0.5), SR, subtype="PCM_16")
    (d / "empty.wav").write_bytes(b"")
    (d / "notes.mp3").write_text("this is a text file with an audio extension\n" * 50)
    whole = (d / "song.wav").read_bytes()
    (d / "truncated.wav").write_bytes(whole[: len(whole) // 2])  # header promises 7.3 s, holds 3.6 s
    (d / "sliver.wav").write_bytes(whole[: 44 + 2 * 5000])  # 0.23 s: too little to use
    (d / "cut_header.wav").write_bytes(whole[:30])
    y = _tone_mix(7.3)
    y[SR] = np.nan
    sf.write(d / "nan.wav", y, SR, subtype="FLOAT")
    return d


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Settings(max_jobs=2, max_queue=32)), base_url=LOCAL) as c:
        yield c


def _post(c, path: Path, *, name: str | None = None, endpoint: str = "/api/predict", **data):
    with open(path, "rb") as fh:
        return c.post(endpoint, files={"file": (name or path.name, fh, "application/octet-stream")}, data=data)


def _upload_dir(c) -> Path:
    return c.app.state.upload_dir


# ------------------------------------------------------------------ the good path
def test_predict_matches_cli_json_and_duration(client, audio_dir):
    r = _post(client, audio_dir / "song.wav")
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["path"] == "song.wav" and got["error"] is None and got["multi_label"] is False  # genre10
    # the object `genrescope predict --format json --timeline` prints (top 5), path aside
    want = Predictor("default").predict(audio_dir / "song.wav").to_dict(timeline=True, top=5)
    want["path"] = "song.wav"
    assert got == want
    # one window per hop, the last aligned to the end, its end == the duration within a frame
    info = client.get("/api/models/default").json()
    sr, win_s, hop_s = info["sr"], info["window_s"], info["window_hop_s"]
    hop_length = 256  # musicnn's; frame_rate = sr / hop_length
    n_frames = 1 + int(round(7.3 * sr)) // hop_length
    win, hop = int(round(win_s * sr / hop_length)), int(round(hop_s * sr / hop_length))
    tl = got["timeline"]
    assert len(tl["start_s"]) == len(window_starts(n_frames, win, hop)) == 3
    assert got["duration_s"] == pytest.approx(7.3, abs=1e-3)
    assert abs(tl["end_s"][-1] - got["duration_s"]) <= hop_length / sr + 1e-3
    assert len(tl["probabilities"]) == len(tl["start_s"]) and len(tl["probabilities"][0]) == len(tl["labels"])
    assert list(_upload_dir(client).iterdir()) == []


def test_predict_top_and_model(client, audio_dir):
    r = _post(client, audio_dir / "song.flac", model="musicnn-mtt", top="0")
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["model"] == "musicnn-mtt" and got["duration_s"] == pytest.approx(4.0, abs=1e-3)
    assert len(got["genres"]) > 5  # top=0: every genre
    assert _post(client, audio_dir / "song.flac", top="x").status_code == 422


def test_stream_events_add_up_to_the_result(client, audio_dir):
    r = _post(client, audio_dir / "song.wav", endpoint="/api/predict/stream", top="0")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    events = [json.loads(line) for line in r.text.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "result" and set(kinds[1:-1]) == {"windows"}
    start, result = events[0], events[-1]["result"]
    assert start["file"] == "song.wav" and start["duration_s"] == pytest.approx(7.3, abs=1e-3)
    assert start["labels"] == result["timeline"]["labels"]
    windows = [e for e in events if e["event"] == "windows"]
    starts = sum((e["start_s"] for e in windows), [])
    probs = np.array(sum((e["probabilities"] for e in windows), []))
    assert starts == result["timeline"]["start_s"]
    np.testing.assert_allclose(probs, result["timeline"]["probabilities"], atol=2e-4)
    whole = _post(client, audio_dir / "song.wav", top="0").json()
    assert [g["label"] for g in result["genres"][:5]] == [g["label"] for g in whole["genres"][:5]]
    np.testing.assert_allclose(result["timeline"]["probabilities"], whole["timeline"]["probabilities"], atol=2e-4)
    assert list(_upload_dir(client).iterdir()) == []


def _whole_song(predictor: Predictor, hop_s: float = 0.5) -> None:
    """Make ``predictor`` a whole-song model: no fixed window, a row every ``hop_s`` from all the frames."""
    import dataclasses

    m = predictor.model
    step = int(round(hop_s * m.feature_config.frame_rate))

    def frames(feats):  # (n_mels, T) -> (ceil(T / step), G): a sigmoid of band means, per hop
        rows = [feats[:, i:i + step].mean(axis=1) for i in range(0, feats.shape[1], step)]
        band = np.resize(np.asarray(rows), (len(rows), len(m.labels)))
        return (1 / (1 + np.exp(-(band - band.mean())))).astype(np.float32)

    predictor.model = dataclasses.replace(m, window_frames=None, predict_frames=frames, frame_hop_s=hop_s)


def test_stream_of_a_whole_song_model_is_one_chunk_and_the_predict_answer(audio_dir):
    """A model that needs the whole song cannot stream: one windows event, then the /api/predict result."""
    # the model is replaced in place: jobs in this process's threads, where that replacement runs
    with TestClient(create_app(Settings(max_jobs=1, model="musicnn-msd", isolate_jobs=False)), base_url=LOCAL) as c:
        _whole_song(c.app.state.catalog.get(None))
        r = _post(c, audio_dir / "song.wav", endpoint="/api/predict/stream", top="0")
        assert r.status_code == 200, r.text
        events = [json.loads(line) for line in r.text.splitlines()]
        assert [e["event"] for e in events] == ["start", "windows", "result"]
        assert events[0]["window_s"] == events[0]["window_hop_s"] == 0.5
        result, windows = events[-1]["result"], events[1]
        tl = result["timeline"]
        assert len(tl["start_s"]) == 15 and tl["start_s"][1] == 0.5 and tl["end_s"][-1] == pytest.approx(7.3, abs=1e-3)
        assert windows["start_s"] == tl["start_s"] and windows["decoded_s"] == pytest.approx(7.3, abs=1e-3)
        whole = _post(c, audio_dir / "song.wav", top="0").json()
        assert whole["timeline"] == tl and whole["genres"] == result["genres"]


def _stream_head(port: int, data: bytes) -> bytes:
    boundary = "genrescopeTestBoundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"long.wav\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    head = (f"POST /api/predict/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def test_stream_stops_when_the_client_leaves(tmp_path):
    """The client reads the first windows and hangs up: the job stops long before the song's end,
    frees its slot and its upload, and the server answers the next request."""
    import io

    import soundfile as sf

    from genrescope.serve.server import BackgroundServer

    buf = io.BytesIO()
    sf.write(buf, _tone_mix(120.0), SR, format="WAV", subtype="PCM_16")  # 40 musicnn windows
    srv = BackgroundServer(Settings(max_jobs=1, model="musicnn-msd", isolate_jobs=False))  # a slowed model, in place
    with srv as url:
        predictor = srv.app.state.catalog.get(None)
        real, calls = predictor.model.predict_windows, []

        def slow(x):  # 40 windows at 0.2 s: the whole song would take 8 s
            calls.append(len(x))
            time.sleep(0.2)
            return real(x)

        import dataclasses

        predictor.model = dataclasses.replace(predictor.model, predict_windows=slow)
        port = srv.sock.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
            s.sendall(_stream_head(port, buf.getvalue()))
            got = b""
            while b'"event":"windows"' not in got:
                chunk = s.recv(65536)
                assert chunk, got
                got += chunk
        deadline = time.monotonic() + 60
        while srv.app.state.gate.active and time.monotonic() < deadline:
            time.sleep(0.05)
        assert srv.app.state.gate.active == 0 and list(srv.app.state.upload_dir.iterdir()) == []
        assert sum(calls) < 30, f"{sum(calls)} of 40 windows analysed after the client left"
        with urllib.request.urlopen(f"{url}/api/health", timeout=30) as r:
            assert json.loads(r.read())["status"] == "ok"


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("endpoint", ["/api/predict", "/api/predict/stream"])
@pytest.mark.parametrize("name, status, words", [
    ("empty.wav", 422, "empty"),
    ("notes.mp3", 415, "not audio: its contents are not .mp3 audio"),
    ("sliver.wav", 422, "truncated"),
    ("cut_header.wav", 422, "truncated or damaged"),
    ("short.wav", 422, "at least 1.00 s"),
    ("nan.wav", 422, "NaN or infinity (first at 1.00 s)"),
])
def test_bad_audio_is_a_clear_4xx(client, audio_dir, endpoint, name, status, words):
    r = _post(client, audio_dir / name, endpoint=endpoint)
    if r.status_code == 200 and endpoint.endswith("/stream"):
        # found only after the first windows went out (NaN two windows in): the last event says so
        last = json.loads(r.text.splitlines()[-1])
        assert name == "nan.wav" and last["event"] == "error" and last["status"] == status
        msg = last["error"]
    else:
        assert r.status_code == status, r.text
        msg = r.json()["error"]
    assert msg.startswith(f"{name}: ") and words in msg
    assert str(_upload_dir(client)) not in msg and "genrescope-uploads" not in msg
    assert list(_upload_dir(client).iterdir()) == []


@pytest.mark.parametrize("endpoint", ["/api/predict", "/api/predict/stream"])
def test_truncated_upload_is_predicted_with_a_warning(client, audio_dir, endpoint):
    r = _post(client, audio_dir / "truncated.wav", endpoint=endpoint)
    assert r.status_code == 200, r.text
    result = r.json() if endpoint == "/api/predict" else json.loads(r.text.splitlines()[-1])["result"]
    assert result["error"] is None and result["genres"] and result["duration_s"] == pytest.approx(3.65, abs=0.01)
    (w,) = result["warnings"]
    assert w.startswith("truncated.wav: truncated: the header promises 7.30 s") and "genrescope-uploads" not in w


def _no_non_finite(text: str) -> bool:
    return re.search(r"\b(NaN|-?Infinity)\b", text.replace("NaN or infinity", "")) is None


@pytest.mark.parametrize("endpoint", ["/api/predict", "/api/predict/stream"])
def test_non_finite_model_output_is_an_error_not_nan(audio_dir, endpoint, monkeypatch):
    import dataclasses

    # the model is replaced in place by one that gives NaN: jobs in this process's threads
    with TestClient(create_app(Settings(max_jobs=1, isolate_jobs=False)), base_url=LOCAL) as c:
        p = c.app.state.catalog.get(None)
        m = p.model
        p.model = dataclasses.replace(m, predict_windows=lambda x: np.full((len(x), len(m.labels)), np.nan, np.float32))
        r = _post(c, audio_dir / "song.wav", endpoint=endpoint)
        assert _no_non_finite(r.text), r.text
        assert r.status_code == 422 and "song.wav: the model gave non-finite probabilities" in r.json()["error"]
        p.model = m


def test_limits_size_and_duration(audio_dir):
    settings = Settings(max_upload_mb=0.3, max_duration_s=5.0, max_jobs=1)
    with TestClient(create_app(settings), base_url=LOCAL) as c:
        r = _post(c, audio_dir / "song.wav")  # 322 kB > 0.3 MiB: cut off while it streams in
        assert r.status_code == 413 and r.json()["error"] == "the file is larger than the limit of 0.3 MiB"
        r = c.post("/api/predict", files={"file": ("big.wav", b"\0" * 2_000_000)})  # refused on Content-Length
        assert r.status_code == 413 and "0.3 MiB" in r.json()["error"]
        r = _post(c, audio_dir / "song.flac")  # 260 kB and 4 s: fine
        assert r.status_code == 200, r.text
    with TestClient(create_app(Settings(max_duration_s=5.0, max_jobs=1)), base_url=LOCAL) as c:
        for endpoint in ("/api/predict", "/api/predict/stream"):
            r = _post(c, audio_dir / "song.wav", endpoint=endpoint)
            assert r.status_code == 413, r.text
            assert r.json()["error"] == "song.wav: is 7.3 s long; the limit is 5 s"
        assert list(_upload_dir(c).iterdir()) == []


def test_bad_requests(client, audio_dir):
    r = _post(client, audio_dir / "song.wav", model="no-such-model")
    assert r.status_code == 404 and "unknown model 'no-such-model'" in r.json()["error"]
    r = _post(client, audio_dir / "song.wav", model="/etc/passwd")  # ids only, never paths
    assert r.status_code == 404
    r = client.post("/api/predict", data={"model": "default"})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["error"]
    r = client.post("/api/predict", files={"other": ("x.wav", b"RIFF")})
    assert r.status_code == 422 and r.json()["error"] == "no file in the form field 'file'"
    r = client.post("/api/predict", content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data; boundary=x"})
    assert r.status_code == 422 and "error" in r.json()
    assert client.get("/api/models/no-such-model").status_code == 404
    assert client.get("/api/nothing-here").json() == {"error": "Not Found"}
    assert list(_upload_dir(client).iterdir()) == []


def test_client_file_name_never_touches_a_path(client, audio_dir):
    r = _post(client, audio_dir / "song.wav", name="../../../etc/evil name.wav")
    assert r.status_code == 200 and r.json()["path"] == "evil name.wav"
    r = _post(client, audio_dir / "song.flac", name="song.flac;rm -rf ~")  # odd extension: dropped, still sniffed
    assert r.status_code == 200 and r.json()["path"] == "song.flac;rm -rf ~"
    assert client_name("C:\\music\\a\x00b.mp3") == "ab.mp3" and client_name("") == "upload"
    assert safe_suffix("x.MP3") == ".mp3" and safe_suffix("x.wav/..") == "" and safe_suffix("x.exe") == ""


# ------------------------------------------------------------------ concurrency
def _held_jobs(monkeypatch):
    """Hold every /api/predict job at its start until ``release`` is set; ``started`` counts them."""
    from genrescope.serve.workers import ProcessJobs

    real = ProcessJobs.predict
    release, started = threading.Event(), threading.Semaphore(0)

    def held(*args, **kwargs):
        started.release()
        release.wait(timeout=60)
        return real(*args, **kwargs)

    monkeypatch.setattr(ProcessJobs, "predict", held)
    return release, started


@pytest.mark.parametrize("max_jobs, max_queue", [(1, 2), (2, 30)])
def test_concurrent_uploads_succeed_or_get_429(audio_dir, max_jobs, max_queue, monkeypatch):
    """20 uploads at once: exactly max_jobs + max_queue are admitted, every other one gets a 429
    at once (the admitted jobs are held until the rest have been answered)."""
    release, _ = _held_jobs(monkeypatch)
    admitted = min(20, max_jobs + max_queue)
    with TestClient(create_app(Settings(max_jobs=max_jobs, max_queue=max_queue)), base_url=LOCAL) as c:
        with ThreadPoolExecutor(20) as pool:
            futures = [pool.submit(_post, c, audio_dir / ("song.wav" if i % 2 else "song.flac")) for i in range(20)]
            deadline = time.monotonic() + 60
            while sum(f.done() for f in futures) < 20 - admitted and time.monotonic() < deadline:
                time.sleep(0.01)
            release.set()
            responses = [f.result() for f in futures]
        codes = [r.status_code for r in responses]
        assert codes.count(200) == admitted and codes.count(429) == 20 - admitted, codes
        for r in responses:
            if r.status_code == 429:
                assert "busy" in r.json()["error"] and r.headers["retry-after"]
        assert c.app.state.gate.active == 0
        assert list(_upload_dir(c).iterdir()) == []


def test_inference_does_not_block_the_event_loop(tmp_path, monkeypatch):
    """While a job is running (held at its start, so it surely is), the server still answers."""
    import soundfile as sf

    release, started = _held_jobs(monkeypatch)
    long = tmp_path / "long.wav"
    sf.write(long, _tone_mix(20.0), SR, subtype="PCM_16")
    with TestClient(create_app(Settings(max_jobs=1)), base_url=LOCAL) as c:
        with ThreadPoolExecutor(1) as pool:
            job = pool.submit(_post, c, long)
            assert started.acquire(timeout=60)  # the job is in the worker now, and stays there
            health = c.get("/api/health")  # a blocked event loop would hang here until the job ends
            assert not job.done()  # answered while the job was still running
            release.set()
            assert health.json()["status"] == "ok" and job.result().status_code == 200


def test_upload_dir_is_private_and_removed(audio_dir):
    app = create_app(Settings(max_jobs=1))
    with TestClient(app, base_url=LOCAL) as c:
        d = _upload_dir(c)
        assert d.is_dir() and (d.stat().st_mode & 0o777) == 0o700
        _post(c, audio_dir / "song.flac")
        _post(c, audio_dir / "notes.mp3")
        assert list(d.iterdir()) == []
    assert not d.exists()


# ------------------------------------------------------------------ models
def test_models_on_offer(tmp_path, audio_dir):
    sub = tmp_path / "runs" / "mtt"
    sub.mkdir(parents=True)
    shutil.copy(pretrained_root() / "musicnn-mtt" / "model.onnx", sub / "best.onnx")
    with TestClient(create_app(Settings(model_dir=tmp_path / "runs", max_jobs=1)), base_url=LOCAL) as c:
        listing = c.get("/api/models").json()
        ids = [m["id"] for m in listing["models"]]
        assert listing["default"] == "default" and ids[0] == "default"
        assert set(pretrained_names()) <= set(ids) and "mtt/best.onnx" in ids
        r = _post(c, audio_dir / "song.flac", model="mtt/best.onnx")
        assert r.status_code == 200 and r.json()["model"] == "mtt/best"
        first = c.app.state.catalog.get("mtt/best.onnx")
        _post(c, audio_dir / "song.flac", model="mtt/best.onnx")
        assert c.app.state.catalog.get("mtt/best.onnx") is first  # loaded once
        info = c.get("/api/models/mtt/best.onnx").json()
        assert info["multi_label"] and "rock" in info["genre_labels"]


def test_docs_and_page_need_no_cdn(client):
    spec = client.get("/openapi.json").json()
    for path in ("/api/predict", "/api/predict/stream", "/api/models", "/api/config"):
        assert path in spec["paths"]
    body = spec["paths"]["/api/predict"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert "file" in body["schema"]["required"]
    for page in ("/", "/docs"):
        r = client.get(page)
        assert r.status_code == 200 and "default-src 'self'" in r.headers["content-security-policy"]
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", r.text)  # every asset is served from here
    assert client.get("/static/vendor/uplot/uPlot.iife.min.js").status_code == 200


# ------------------------------------------------------------------ live audio
def test_live_websocket_estimates(client):
    sr_in = 44100
    y = _tone_mix(4.0, sr_in)
    with client.websocket_connect("ws://127.0.0.1/api/live?model=default") as ws:
        ws.send_json({"sample_rate": sr_in})
        ready = ws.receive_json()
        assert ready["event"] == "ready" and ready["interval_s"] == 1.0 and ready["multi_label"] is False
        estimates = []
        for i in range(0, len(y), 11025):  # quarter-second frames, as the page sends them
            ws.send_bytes(y[i:i + 11025].astype("<f4").tobytes())
        while len(estimates) < 3:
            msg = ws.receive_json()
            assert msg["event"] == "estimate"
            estimates.append(msg)
    # the first second is too little to judge; then one estimate per second of audio
    assert [e["t"] for e in estimates] == [2.0, 3.0, 4.0]
    top = estimates[-1]["genres"]
    assert len(top) > 5 and top == sorted(top, key=lambda g: -g["probability"])
    assert estimates[-1]["seconds"] == pytest.approx(4.0, abs=0.05)  # less the resampler's latency
    assert -40 < estimates[-1]["level_db"] < 0


@pytest.mark.parametrize("hello, words", [({"sample_rate": 5}, "sample_rate must be"), ({"rate": 1}, "sample_rate")])
def test_live_websocket_bad_input(client, hello, words):
    with client.websocket_connect("ws://127.0.0.1/api/live") as ws:
        ws.send_json(hello)
        msg = ws.receive_json()
        assert msg["event"] == "error" and words in msg["error"]
    with client.websocket_connect("ws://127.0.0.1/api/live?model=nope") as ws:
        ws.send_json({"sample_rate": 16000})
        assert "unknown model" in ws.receive_json()["error"]


def test_live_websocket_limit():
    with TestClient(create_app(Settings(max_live=1, max_jobs=1)), base_url=LOCAL) as c:
        with c.websocket_connect("ws://127.0.0.1/api/live") as first:
            first.send_json({"sample_rate": 16000})
            assert first.receive_json()["event"] == "ready"
            with c.websocket_connect("ws://127.0.0.1/api/live") as second:
                msg = second.receive_json()
                assert msg["event"] == "error" and "too many live listeners" in msg["error"]


# ------------------------------------------------------------------ the command
def test_serve_command_prints_its_address_and_serves(tmp_path):
    with socket.socket() as s:  # a port that is free now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "genrescope", "serve", "--port", str(port), "--max-jobs", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in line, line + proc.stderr.read() if proc.poll() is not None else line
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5) as resp:
                    assert json.load(resp)["status"] == "ok"
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_runs_the_chosen_backend_and_says_so(audio_dir):
    """Settings(backend=...) reaches the job workers: the answer and the model listing state the precision."""
    pytest.importorskip("openvino")
    from genrescope.inference.backends import cpu_has_bf16

    with TestClient(create_app(Settings(max_jobs=1, backend="openvino", precision="fp32")), base_url=LOCAL) as c:
        r = _post(c, audio_dir / "song.flac")
        assert r.status_code == 200, r.text
        assert r.json()["precision"] == "fp32"
        info = c.get("/api/models/default").json()
        assert (info["backend"], info["precision"]) == ("openvino", "fp32")
    with TestClient(create_app(Settings(max_jobs=1, backend="openvino")), base_url=LOCAL) as c:
        assert _post(c, audio_dir / "song.flac").json()["precision"] == ("bf16" if cpu_has_bf16() else "fp32")
    with pytest.raises(Exception, match="bf16 needs OpenVINO"):
        Settings(backend="onnxruntime", precision="bf16")
