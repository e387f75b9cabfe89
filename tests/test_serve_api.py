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
    (d / "cut_header.wav").write_bytes(whole[:30])
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
    assert got["path"] == "song.wav" and got["error"] is None and got["multi_label"] is True
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


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("endpoint", ["/api/predict", "/api/predict/stream"])
@pytest.mark.parametrize("name, status, words", [
    ("empty.wav", 422, "empty"),
    ("notes.mp3", 415, "not a supported audio file"),
    ("truncated.wav", 422, "truncated"),
    ("cut_header.wav", 422, "truncated or damaged"),
    ("short.wav", 422, "at least 1.00 s"),
])
def test_bad_audio_is_a_clear_4xx(client, audio_dir, endpoint, name, status, words):
    r = _post(client, audio_dir / name, endpoint=endpoint)
    if r.status_code == 200 and endpoint.endswith("/stream"):
        # found only after the first windows went out (truncation shows at the end): the last event says so
        last = json.loads(r.text.splitlines()[-1])
        assert name == "truncated.wav" and last["event"] == "error" and last["status"] == status
        msg = last["error"]
    else:
        assert r.status_code == status, r.text
        msg = r.json()["error"]
    assert msg.startswith(f"{name}: ") and words in msg
    assert str(_upload_dir(client)) not in msg and "genrescope-uploads" not in msg
    assert list(_upload_dir(client).iterdir()) == []


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
@pytest.mark.parametrize("max_jobs, max_queue", [(1, 2), (2, 30)])
def test_concurrent_uploads_succeed_or_get_429(audio_dir, max_jobs, max_queue):
    with TestClient(create_app(Settings(max_jobs=max_jobs, max_queue=max_queue)), base_url=LOCAL) as c:
        def one(i):
            return _post(c, audio_dir / ("song.wav" if i % 2 else "song.flac"))

        with ThreadPoolExecutor(20) as pool:
            responses = list(pool.map(one, range(20)))
        codes = [r.status_code for r in responses]
        assert set(codes) <= {200, 429}, codes
        assert codes.count(200) >= max_jobs
        if max_jobs + max_queue >= 20:
            assert codes == [200] * 20
        for r in responses:
            if r.status_code == 429:
                assert "busy" in r.json()["error"] and r.headers["retry-after"]
        assert c.app.state.gate.active == 0
        assert list(_upload_dir(c).iterdir()) == []


def test_inference_does_not_block_the_event_loop(tmp_path):
    import soundfile as sf

    long = tmp_path / "long.wav"
    sf.write(long, _tone_mix(120.0), SR, subtype="PCM_16")
    with TestClient(create_app(Settings(max_jobs=1)), base_url=LOCAL) as c:
        t = threading.Thread(target=_post, args=(c, long))
        t.start()
        time.sleep(0.3)  # the upload is being analysed now
        t0 = time.perf_counter()
        assert c.get("/api/health").json()["status"] == "ok"
        assert time.perf_counter() - t0 < 0.5
        t.join()


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
        assert ready["event"] == "ready" and ready["interval_s"] == 1.0 and ready["multi_label"]
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
