"""The web app under hostile clients: slow and endless bodies, idle sockets, decode bombs,
foreign hosts and origins, abandoned jobs, and errors that must stay JSON.

The connection-level tests run a real server on 127.0.0.1 (port chosen by the OS) in this
process and attack it with the bounded attackers of ``genrescope.testing.attackers`` (loopback only, a
fixed number of sockets, stopped at the end of each test). Nothing here asserts a speed:
every wait has a generous bound and asserts what happened, not how fast.
"""
from __future__ import annotations

import http.client
import json
import logging
import socket
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed (pip install 'genrescope[web]')")
pytest.importorskip("httpx", reason="fastapi.testclient needs httpx")

from fastapi.testclient import TestClient  # noqa: E402

from genrescope.serve.app import create_app  # noqa: E402
from genrescope.serve.model_catalog import ModelCatalog  # noqa: E402
from genrescope.serve.server import BackgroundServer  # noqa: E402
from genrescope.serve.settings import Settings  # noqa: E402

from genrescope.testing import attackers as attack  # noqa: E402

LOCAL = "http://127.0.0.1"


@pytest.fixture(scope="module")
def song() -> bytes:
    return attack.tone_wav(4.0)


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Settings(max_jobs=1)), base_url=LOCAL) as c:
        yield c


def _port(srv: BackgroundServer) -> int:
    return srv.sock.getsockname()[1]


def _read_until_closed(s: socket.socket, bound_s: float = 20.0) -> bytes:
    """Everything the server sends until it closes (raises socket.timeout past ``bound_s``)."""
    s.settimeout(bound_s)
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out


# ------------------------------------------------------------------ slow clients cannot lock others out
def test_attack_loop_normal_client_still_gets_its_answer(song):
    """Slow uploads (more than every job slot), half-sent headers past the connection cap and
    idle live sockets, all at once: a normal upload still gets its 200."""
    settings = Settings(max_jobs=1, max_queue=1, max_connections=24, header_timeout_s=1.0, body_idle_s=5.0,
                        body_timeout_s=60.0, max_live=2, live_idle_s=1.0)
    srv = BackgroundServer(settings)
    with srv:
        port = _port(srv)
        attackers = ([attack.SlowUpload(port, every_s=0.3) for _ in range(6)]
                     + [attack.HalfHeaders(port, every_s=0.2) for _ in range(30)]
                     + [attack.IdleLive(port) for _ in range(3)])
        for a in attackers:
            a.start()
        try:
            time.sleep(1.5)  # every slow upload is in its body now; the header sockets fill the table
            results = [attack.post(port, attack.multipart(song), timeout=60) for _ in range(2)]
            live = attack.live_ready(port, timeout=20)
        finally:
            for a in attackers:
                a.stop()
            for a in attackers:
                a.join(10)
        assert [r[0] for r in results] == [200, 200], [r[:2] for r in results]
        assert all(r[1]["duration_s"] == pytest.approx(4.0, abs=1e-3) for r in results)
        assert live is not None, "a normal live client was locked out by idle sockets"
        assert sum(a.opened for a in attackers if isinstance(a, attack.HalfHeaders)) > 30  # they were cut and came back
        assert srv.app.state.gate.active == 0


def test_half_sent_headers_are_cut_off():
    with BackgroundServer(Settings(max_jobs=1, header_timeout_s=0.5)) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            for _ in range(5):  # keep sending: a timer that restarts on every byte would never fire
                time.sleep(0.2)
                try:
                    s.send(b"a")
                except OSError:
                    break
            answer = _read_until_closed(s)
        assert answer.startswith(b"HTTP/1.1 408") and b'{"error": "no complete request headers' in answer
        assert b"x-content-type-options: nosniff" in answer


def test_full_connection_table_makes_room_for_a_request():
    with BackgroundServer(Settings(max_jobs=1, max_connections=8, header_timeout_s=30.0)) as url:
        port = int(url.rsplit(":", 1)[1])
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
        try:
            time.sleep(0.3)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
            conn.request("GET", "/api/health")
            assert json.loads(conn.getresponse().read())["status"] == "ok"
            conn.close()
            assert _read_until_closed(idle[0]).startswith(b"HTTP/1.1 408")  # the longest-idle one made room
        finally:
            for s in idle:
                s.close()


@pytest.mark.slow
def test_a_stalled_body_times_out():
    with BackgroundServer(Settings(max_jobs=1, body_idle_s=0.5)) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(attack.request_head(port, "/api/predict", 10_000) + b"--" + attack.BOUNDARY.encode())
            answer = _read_until_closed(s)
        assert answer.startswith(b"HTTP/1.1 408") and b"paused for more than 0.5 s" in answer


# ------------------------------------------------------------------ bodies with no end
def test_whole_body_is_capped_not_only_the_file(song):
    settings = Settings(max_jobs=1, max_upload_mb=0.5)
    with TestClient(create_app(settings), base_url=LOCAL) as c:
        body = attack.multipart(song) + b"x" * (2 << 20)  # 2 MiB after the final boundary
        r = c.post("/api/predict", content=_chunks(body),
                   headers={"content-type": f"multipart/form-data; boundary={attack.BOUNDARY}"})
        assert r.status_code == 413 and "request is larger than the limit" in r.json()["error"]
        fields = tuple(("model", "default") for _ in range(20))  # one name, many parts
        r = c.post("/api/predict", content=attack.multipart(song, fields=fields),
                   headers={"content-type": f"multipart/form-data; boundary={attack.BOUNDARY}"})
        assert r.status_code == 422 and "too many form parts" in r.json()["error"]
        assert list(c.app.state.upload_dir.iterdir()) == [] and c.app.state.pending.used == 0


def _chunks(body: bytes, size: int = 1 << 16):
    """The body as a stream without a Content-Length (the declared-size check cannot catch it)."""
    for i in range(0, len(body), size):
        yield body[i:i + size]


# ------------------------------------------------------------------ decode bombs
@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bombs")
    out = {"bomb_1hz.wav": attack.bomb_wav(), "bomb_655khz.flac": attack.bomb_flac(seconds=2.0)}
    for name, data in out.items():
        (d / name).write_bytes(data)
    return {name: d / name for name in out}


@pytest.mark.parametrize("name, words", [("bomb_1hz.wav", "sample rate of 1 Hz"),
                                         ("bomb_655khz.flac", "sample rate of 655350 Hz")])
def test_decode_bombs_are_refused_by_their_header(client, bombs, name, words, capsys):
    for endpoint in ("/api/predict", "/api/predict/stream"):
        r = client.post(endpoint, files={"file": (name, bombs[name].read_bytes())})
        assert r.status_code == 422 and r.json()["error"].startswith(f"{name}: ") and words in r.json()["error"]
    from genrescope.commands import main

    assert main(["predict", str(bombs[name])]) == 1  # the CLI's exit code for files that failed
    out = capsys.readouterr()
    lines = [ln for ln in (out.out + out.err).splitlines() if words in ln]
    assert len(lines) == 1 and f"error: {bombs[name]}: declares" in lines[0]


def test_job_budgets(song, tmp_path):
    import soundfile as sf

    many = tmp_path / "many.flac"  # 8 channels at 384 kHz: allowed rates, too many samples for a 1 s budget
    sf.write(many, np.zeros((192000, 8), np.float32), 384000)
    with TestClient(create_app(Settings(max_jobs=1, max_duration_s=1.0)), base_url=LOCAL) as c:
        r = c.post("/api/predict", files={"file": ("many.flac", many.read_bytes())})
        assert r.status_code == 413 and "samples (8 channels at 384000 Hz)" in r.json()["error"]
    with TestClient(create_app(Settings(max_jobs=1, max_job_mb=1.0)), base_url=LOCAL) as c:
        r = c.post("/api/predict", files={"file": ("song.wav", song)})
        assert r.status_code == 413 and "MiB to analyse" in r.json()["error"]
    with TestClient(create_app(Settings(max_jobs=1, job_timeout_s=1e-9)), base_url=LOCAL) as c:
        for endpoint in ("/api/predict", "/api/predict/stream"):
            r = c.post(endpoint, files={"file": ("song.wav", song)})
            assert r.status_code == 503 and "took longer than the limit" in r.json()["error"]
        assert c.app.state.gate.active == 0


def _memory_hog(path: Path, copies: int) -> Path:
    """musicnn-mtt with a branch that copies each window ``copies`` times (72 kB each) before
    adding 0 times their sum to the probabilities: the same answers, and a model call that
    takes ``copies`` x 72 kB. The header's estimate cannot see that; the worker's memory does."""
    onnx = pytest.importorskip("onnx", reason="editing an ONNX graph needs the onnx package (train extra)")
    from onnx import TensorProto, helper

    from genrescope.inference.registry import pretrained_root

    model = onnx.load(str(pretrained_root() / "musicnn-mtt" / "model.onnx"))
    g = model.graph
    out = g.output[0].name
    for node in g.node:
        node.output[:] = [f"{o}_raw" if o == out else o for o in node.output]
    g.initializer.extend([helper.make_tensor("hog_axes", TensorProto.INT64, [1], [1]),
                          helper.make_tensor("hog_shape", TensorProto.INT64, [4], [1, copies, 1, 1]),
                          helper.make_tensor("hog_zero", TensorProto.FLOAT, [], [0.0])])
    g.node.extend([helper.make_node("Unsqueeze", [g.input[0].name, "hog_axes"], ["hog_u"]),
                   helper.make_node("Expand", ["hog_u", "hog_shape"], ["hog_big"]),  # (B, copies, 96, 187)
                   helper.make_node("ReduceSum", ["hog_big"], ["hog_sum"], keepdims=0),
                   helper.make_node("Mul", ["hog_sum", "hog_zero"], ["hog_nothing"]),
                   helper.make_node("Add", [f"{out}_raw", "hog_nothing"], [out])])
    onnx.save(model, str(path))
    return path


@pytest.mark.slow
def test_job_over_its_memory_is_stopped_and_the_server_carries_on(song, tmp_path):
    """A job whose model call needs ~300 MB, under a 64 MiB budget: its header's estimate
    passes, its worker process is killed once it grows past the budget, the client gets a 413
    JSON error (both endpoints), the slot is freed and the next job, in a fresh worker, works."""
    _memory_hog(tmp_path / "hog.onnx", copies=4096)
    settings = Settings(max_jobs=1, max_job_mb=64.0, model_dir=tmp_path)
    with TestClient(create_app(settings), base_url=LOCAL) as c:
        r = c.post("/api/predict", files={"file": ("song.wav", song)})
        assert r.status_code == 200, r.text  # the default model fits
        first = c.app.state.runner.pids()
        for endpoint in ("/api/predict", "/api/predict/stream"):
            r = c.post(endpoint, files={"file": ("song.wav", song)}, data={"model": "hog.onnx"})
            assert r.status_code == 413, r.text
            assert r.json() == {"error": "the analysis needed more than the limit of 64 MiB of memory"}
            assert c.app.state.gate.active == 0 and list(c.app.state.upload_dir.iterdir()) == []
        assert c.get("/api/health").json()["status"] == "ok"
        r = c.post("/api/predict", files={"file": ("song.wav", song)})
        assert r.status_code == 200, r.text
        assert len(c.app.state.runner.pids()) == 1 and c.app.state.runner.pids() != first  # replaced
    exact = Settings(max_jobs=1, model_dir=tmp_path, backend="onnxruntime")  # the same numbers for the same graph
    with TestClient(create_app(exact), base_url=LOCAL) as c:
        r = c.post("/api/predict", files={"file": ("song.wav", song)}, data={"model": "hog.onnx"})
        assert r.status_code == 200, r.text  # within the default 1 GiB: the same answer as musicnn-mtt
        assert r.json()["genres"] == c.post("/api/predict", files={"file": ("song.wav", song)},
                                            data={"model": "musicnn-mtt"}).json()["genres"]


# ------------------------------------------------------------------ abandoned jobs and aborted uploads
def _wait_for_log(caplog, words: str, bound_s: float = 60.0) -> list[logging.LogRecord]:
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        found = [r for r in caplog.records if words in r.getMessage()]
        if found:
            return found
        time.sleep(0.1)
    return []


def test_abandoned_predict_job_stops(caplog):
    caplog.set_level(logging.INFO, logger="genrescope")
    body = attack.multipart(attack.tone_wav(120.0), "long.wav")  # 40 windows x 2 models: seconds of work
    srv = BackgroundServer(Settings(max_jobs=1))
    with srv:
        port = _port(srv)
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(attack.request_head(port, "/api/predict", len(body)) + body)
            deadline = time.monotonic() + 30
            while not srv.app.state.gate.active and time.monotonic() < deadline:
                time.sleep(0.02)  # close only once the body is in and the job has its slot
            assert srv.app.state.gate.active == 1
        assert _wait_for_log(caplog, "long.wav stopped: the client left"), "the job ran on after its client left"
        deadline = time.monotonic() + 30
        while srv.app.state.gate.active and time.monotonic() < deadline:
            time.sleep(0.05)
        assert srv.app.state.gate.active == 0 and list(srv.app.state.upload_dir.iterdir()) == []


def test_aborted_upload_is_one_info_line(caplog):
    caplog.set_level(logging.INFO)
    with BackgroundServer(Settings(max_jobs=1)) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(attack.request_head(port, "/api/predict", 100_000) + attack.multipart(b"RIFF" * 100)[:300])
            time.sleep(0.3)
        found = _wait_for_log(caplog, "closed the connection during the upload", 20)
        time.sleep(0.3)
    assert len(found) == 1 and found[0].levelno == logging.INFO
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


# ------------------------------------------------------------------ live sockets
def test_live_socket_idle_timeout_and_bad_first_messages():
    from websockets.sync.client import connect

    with BackgroundServer(Settings(max_jobs=1, live_idle_s=0.5)) as url:
        ws_url = url.replace("http", "ws") + "/api/live"
        with connect(ws_url, open_timeout=20, ping_interval=None) as ws:
            ws.send(json.dumps({"sample_rate": 16000}))
            assert json.loads(ws.recv(timeout=30))["event"] == "ready"
            msg = json.loads(ws.recv(timeout=20))  # no audio: the server gives up on it
            assert msg["event"] == "error" and "no audio for 0.5 s" in msg["error"]
        for first in (b"\x00\x01binary", "[" * 100_000, json.dumps([[[[{"sample_rate": 16000}]]]])):
            with connect(ws_url, open_timeout=20, ping_interval=None, max_size=None) as ws:
                ws.send(first)
                msg = json.loads(ws.recv(timeout=20))
                assert msg["event"] == "error" and "sample_rate" in msg["error"]
        assert attack.live_ready(int(url.rsplit(":", 1)[1])) is not None  # and the server still serves


def test_live_socket_refuses_foreign_origins():
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    with BackgroundServer(Settings(max_jobs=1)) as url:
        ws_url = url.replace("http", "ws") + "/api/live"
        with pytest.raises(InvalidStatus) as info:
            connect(ws_url, origin="http://evil.example", open_timeout=20)
        assert info.value.response.status_code == 403
        with connect(ws_url, origin=url, open_timeout=20, ping_interval=None) as ws:  # its own page
            ws.send(json.dumps({"sample_rate": 16000}))
            assert json.loads(ws.recv(timeout=30))["event"] == "ready"


# ------------------------------------------------------------------ hosts and origins
def test_host_allow_list(song):
    app = create_app(Settings(max_jobs=1, allowed_hosts=("genrescope.lan",)))
    with TestClient(app, base_url=LOCAL) as c:
        r = c.get("/api/health", headers={"host": "attacker.example"})
        assert r.status_code == 400 and "host name" in r.json()["error"]
        assert r.headers["x-content-type-options"] == "nosniff" and "content-security-policy" in r.headers
        assert c.get("/api/health", headers={"host": "genrescope.lan:8000"}).status_code == 200
        assert c.get("/api/health", headers={"host": "10.1.2.3:8000"}).status_code == 200  # an IP cannot be rebound
    with TestClient(create_app(Settings(max_jobs=1)), base_url=LOCAL) as c:
        assert c.get("/api/health", headers={"host": "localhost:8000"}).status_code == 200
        assert c.get("/api/health", headers={"host": "genrescope.lan"}).status_code == 400


def test_cross_site_posts_need_allow_origin(song):
    files = {"file": ("song.wav", song)}
    with TestClient(create_app(Settings(max_jobs=1)), base_url=LOCAL) as c:
        r = c.post("/api/predict", files=files, headers={"origin": "http://evil.example"})
        assert r.status_code == 403 and "other websites" in r.json()["error"]
        assert c.post("/api/predict", files=files, headers={"origin": "http://127.0.0.1"}).status_code == 200
        assert c.get("/api/health", headers={"origin": "http://evil.example"}).status_code == 200  # reads are the CORS default's
    allowed = Settings(max_jobs=1, allow_origins=("http://evil.example",))
    with TestClient(create_app(allowed), base_url=LOCAL) as c:
        assert c.post("/api/predict", files=files, headers={"origin": "http://evil.example"}).status_code == 200


@pytest.mark.parametrize("origin, host, allow, ok", [
    ("http://127.0.0.1:8000", "127.0.0.1:8000", (), True),
    ("http://127.0.0.1:8001", "127.0.0.1:8000", (), False),
    ("https://music.example", "music.example", (), True),  # behind an https proxy: no port in Host
    ("http://evil.example", "127.0.0.1:8000", (), False),
    ("null", "127.0.0.1:8000", (), False),  # sandboxed frames, file:// pages
    ("http://evil.example", "127.0.0.1:8000", ("http://evil.example/",), True),
    ("http://evil.example", "127.0.0.1:8000", ("*",), True),
])
def test_origin_rules(origin, host, allow, ok):
    from genrescope.serve.request_guard import origin_allowed

    assert origin_allowed(origin, host, allow) is ok


def test_csp_connects_only_to_its_own_origin(client):
    csp = client.get("/", headers={"host": "127.0.0.1:8000"}).headers["content-security-policy"]
    connect = next(d for d in csp.split(";") if d.strip().startswith("connect-src")).split()
    assert connect == ["connect-src", "'self'", "ws://127.0.0.1:8000", "wss://127.0.0.1:8000"]


# ------------------------------------------------------------------ errors are JSON, without server paths
def test_errors_are_json_with_headers(client, song, monkeypatch, tmp_path):
    r = client.post("/api/predict", files={"file": ("song.wav", song)}, data={"top": "²"})
    assert r.status_code == 422 and "top must be a whole number" in r.json()["error"]
    nan = tmp_path / "nan.wav"
    import soundfile as sf

    y = np.zeros(22050 * 4, np.float32)
    y[1000] = np.nan
    sf.write(nan, y, 22050, subtype="FLOAT")
    r = client.post("/api/predict", files={"file": ("nan.wav", nan.read_bytes())})
    assert r.status_code in (200, 422) and r.headers["content-type"] == "application/json", r.text
    json.loads(r.text, parse_constant=lambda c: pytest.fail(f"{c} in the JSON answer"))
    def broken(*a, **k):
        raise RuntimeError("/srv/secret/path exploded")

    monkeypatch.setattr(client.app.state.runner, "predict", broken)
    r = client.post("/api/predict", files={"file": ("song.wav", song)})
    assert r.status_code == 500 and r.json() == {"error": "internal error (see the server log)"}
    assert r.headers["x-content-type-options"] == "nosniff" and "content-security-policy" in r.headers


def test_model_errors_do_not_show_server_paths(tmp_path, song):
    (tmp_path / "broken.onnx").write_bytes(b"not an onnx graph" * 10)
    with TestClient(create_app(Settings(max_jobs=1, model_dir=tmp_path)), base_url=LOCAL) as c:
        r = c.post("/api/predict", files={"file": ("song.wav", song)}, data={"model": "broken.onnx"})
        assert r.status_code == 500 and str(tmp_path) not in r.text and "cannot be loaded" in r.json()["error"]


def test_rfc5987_file_names(client, song):
    disp = "form-data; name=\"file\"; filename*=UTF-8''%E2%82%AC%20r%C3%A9sum%C3%A9.wav"
    r = client.post("/api/predict", content=attack.multipart(song, disposition=disp),
                    headers={"content-type": f"multipart/form-data; boundary={attack.BOUNDARY}"})
    assert r.status_code == 200, r.text
    assert r.json()["path"] == "€ résumé.wav"


# ------------------------------------------------------------------ the model catalogue is bounded
def test_model_catalog_keeps_a_bounded_number_loaded():
    catalog = ModelCatalog("musicnn-msd", max_models=2)
    for name in ("musicnn-msd", "musicnn-mtt", "vgg-msd", "vgg-mtt"):
        catalog.get(name)
    loaded = [e.id for e in catalog.entries() if catalog.is_loaded(e.id)]
    assert loaded == ["musicnn-msd", "vgg-mtt"]  # the default stays, the most recent one joins it


def test_serve_flags_reach_the_settings():
    from genrescope.commands import build_parser
    from genrescope.commands.serve_cmd import settings_from_args

    args = build_parser().parse_args(["serve", "--host", "0.0.0.0", "--allow-host", "music.lan", "--allow-host",
                                      "genre.lan", "--allow-origin", "https://example.org", "--max-connections",
                                      "64", "--job-timeout", "30", "--max-models", "2", "--max-job-mb", "256"])
    s = settings_from_args(args)
    assert s.hosts == {"localhost", "127.0.0.1", "::1", "0.0.0.0", "music.lan", "genre.lan"}
    assert s.allow_origins == ("https://example.org",)
    assert (s.max_connections, s.job_timeout_s, s.max_models, s.host) == (64, 30.0, 2, "0.0.0.0")
    assert s.max_job_mb == 256.0 and (s.backend, s.precision) == ("auto", "auto")
    default = settings_from_args(build_parser().parse_args(["serve"]))
    assert default.hosts == {"localhost", "127.0.0.1", "::1"} and default.allow_origins == ()


def test_uvicorn_is_in_the_tested_range():
    # serve/connections.py extends uvicorn's h11 protocol class, which is not public API:
    # pyproject pins the range it was tested on, and the attributes it relies on must be there
    import re
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    from importlib.metadata import version
    
    from uvicorn.protocols.http.h11_impl import H11Protocol

    web = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    spec = next(d for d in web["project"]["optional-dependencies"]["web"] if d.startswith("uvicorn"))
    lo, hi = re.fullmatch(r"uvicorn>=([\d.]+),<([\d.]+)", spec).groups()

    def key(v):
        return tuple(int(x) for x in re.findall(r"\d+", v)[:3])

    assert key(lo) <= key(version("uvicorn")) < key(hi), f"uvicorn {version('uvicorn')} outside {spec}"
    for name in ("connection_made", "handle_events", "on_response_complete", "connection_lost"):
        assert callable(getattr(H11Protocol, name, None)), name
