"""The in-browser mode in a real browser (Debian Chromium through Playwright): the page that
``genrescope export --web`` writes, served by ``python -m http.server`` on 127.0.0.1 with no
genrescope process, held to the Python path.

* Features: the same decoded samples go to the JavaScript feature code (static/features.js, in
  the page's Web Worker) and to genrescope.features.spectrogram. The JS side computes the FFT and
  mel sums in float64 from the same float32 window and filterbank weights; Python computes them
  in float32 (pocketfft, OpenBLAS). The difference is float32 rounding, measured at 5e-6
  (log10(1 + 10000 S), musicnn) and 2e-5 dB (dB log-mel); the tolerances below are about 20x
  that, while any real change of the recipe (a hop, the mel scale, the padding, the log) moves
  the features by 0.01-10.
* Timelines: the browser decodes with Web Audio at 48 kHz and decimates to 16 kHz with its own
  steep low-pass (static/local.js decimate), the server decodes with libsndfile and resamples
  with soxr "HQ". The two low-passes still differ near the new Nyquist frequency, and the Opus
  and Vorbis decoders differ slightly, which moves musicnn-msd's single-window probabilities by
  up to 0.029 and its track probabilities by up to 0.013 on the real files here (the default
  genre10 head: 0.078 and 0.018). With Chromium's own 48 -> 16 kHz resampling instead it was 0.10
  and 0.054 (0.26 and 0.10 for genre10). Given the server's own samples, the browser's timeline matches to 1e-3
  (test_same_samples_same_timeline): what remains is the resampler, not the features or the model.

Skipped when /usr/bin/chromium or Playwright is missing; the real-file cases skip without
../shared/data.
"""
from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")

from conftest import SHARED_DATA
from helpers.page import (JS_B64, JS_F32, MODEL, analyse_in_page, free_port, js_features,  # noqa: F401
                          manifest_config, song)

#: |JS - Python| on the same samples (see the module docstring for why)
LOG10_1P_TOL = 1e-4
DB_TOL = 1e-3  # dB
MFCC_TOL = 2e-3
#: browser vs server timelines: per-window and per-track probability, window boundaries (s)
WINDOW_TOL = 0.06  # measured up to 0.029 (GTZAN metal.00000 and rock.00000.opus)
TRACK_TOL = 0.03  # measured up to 0.013
#: the same for the default genre10 (a softmax head on both taggers' embeddings: more sensitive)
GENRE10_WINDOW_TOL = 0.15  # measured up to 0.078 (rock.00000.opus)
GENRE10_TRACK_TOL = 0.04  # measured up to 0.018
TIME_TOL = 0.002


# ---------------------------------------------------------------- features
@pytest.mark.parametrize("sr,channels", [(44100, 2), (48000, 1)])
def test_log_mel_matches_python(page, web_dir, tmp_path, sr, channels):
    """musicnn's log-mel, its config read from the export's manifest (= the ONNX metadata)."""
    import soundfile as sf

    from genrescope.audio.decode import load_audio
    from genrescope.config import FeatureConfig
    from genrescope.features.spectrogram import log_mel

    cfg = FeatureConfig.from_dict(manifest_config(web_dir))
    path = tmp_path / f"song_{sr}_{channels}.wav"
    sf.write(str(path), song(sr, 8.0, channels), sr, subtype="FLOAT")
    y = load_audio(path, sr=cfg.sr)
    want = log_mel(y, cfg)
    got = js_features(page, y, cfg.to_dict())
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= LOG10_1P_TOL


@pytest.mark.parametrize("kind,tol", [("log_mel", DB_TOL), ("mfcc", MFCC_TOL)])
def test_db_features_match_python(page, kind, tol):
    """genrescope's own default front end (22050 Hz, dB, Slaney mels, zero padding) and MFCCs."""
    from genrescope.config import DEFAULT_FEATURES
    from genrescope.features.spectrogram import compute

    y = song(22050, 6.0, seed=3)
    want = compute(y, DEFAULT_FEATURES, kind)
    got = js_features(page, y, DEFAULT_FEATURES.to_dict(), kind)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= tol


def test_a_wrong_constant_is_caught(page, web_dir):
    """The tolerance is tight enough to see one changed constant (HTK instead of Slaney mels)."""
    from genrescope.config import FeatureConfig
    from genrescope.features.spectrogram import log_mel

    cfg = FeatureConfig.from_dict(manifest_config(web_dir))
    y = song(cfg.sr, 4.0)
    got = js_features(page, y, {**cfg.to_dict(), "mel_htk": True})
    assert np.abs(got - log_mel(y, cfg)).max() > 100 * LOG10_1P_TOL


@pytest.mark.parametrize("sr,channels", [(44100, 2), (48000, 2)])
def test_browser_resampling_is_close(page, tmp_path, sr, channels):
    """Web Audio's decoding and resampling against soxr's: same length, no delay, small error."""
    import soundfile as sf

    from genrescope.audio.decode import load_audio

    path = tmp_path / "r.wav"
    sf.write(str(path), song(sr, 6.0, channels), sr, subtype="FLOAT")
    b64 = base64.b64encode(path.read_bytes()).decode()
    out = page.evaluate(f"""async (s) => {{
        const toB64 = {JS_B64};
        const bin = Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
        const y = await window.genrescope.local.constructor.decode(new File([bin], 'r.wav'), 16000);
        return toB64(y); }}""", b64)
    web = np.frombuffer(base64.b64decode(out), np.float32)
    ref = load_audio(path, sr=16000)
    assert abs(len(web) - len(ref)) <= 1
    n = min(len(web), len(ref))
    lags = range(-8, 9)
    corr = [float(np.dot(web[8 + k:n - 8 + k], ref[8:n - 8])) for k in lags]
    assert lags[int(np.argmax(corr))] == 0
    assert np.sqrt(np.mean((web[:n] - ref[:n]) ** 2)) <= 0.05 * np.sqrt(np.mean(ref[:n] ** 2))


# ---------------------------------------------------------------- timelines
def _compare(result: dict, server: dict) -> dict:
    tb, ts = result["timeline"], server["timeline"]
    assert result["model"] == server["model"] and tb["labels"] == ts["labels"]
    assert set(result) == set(server), set(result) ^ set(server)  # the same keys as POST /api/predict
    assert abs(result["duration_s"] - server["duration_s"]) <= TIME_TOL
    assert len(tb["start_s"]) == len(ts["start_s"])
    assert np.abs(np.subtract(tb["start_s"], ts["start_s"])).max() <= TIME_TOL
    assert np.abs(np.subtract(tb["end_s"], ts["end_s"])).max() <= TIME_TOL
    window = float(np.abs(np.subtract(tb["probabilities"], ts["probabilities"])).max())
    sp = {g["label"]: g["probability"] for g in server["genres"]}
    track = max(abs(g["probability"] - sp[g["label"]]) for g in result["genres"])
    return {"window": window, "track": track, "top": (result["genres"][0]["label"], server["genres"][0]["label"])}


@pytest.mark.parametrize("sr,channels,fmt", [(44100, 2, "wav"), (48000, 1, "flac"), (48000, 2, "ogg"),
                                             (44100, 1, "wav")])
def test_generated_timeline_matches_server(page, predictor, tmp_path, sr, channels, fmt):
    import soundfile as sf

    path = tmp_path / f"song_{sr}_{channels}.{fmt}"
    kw = {"wav": {"subtype": "PCM_16"}, "flac": {}, "ogg": {"format": "OGG", "subtype": "VORBIS"}}[fmt]
    sf.write(str(path), song(sr, 20.0, channels, seed=sr + channels), sr, **kw)
    d = _compare(analyse_in_page(page, path), predictor.predict(path).to_dict(timeline=True))
    assert d["window"] <= WINDOW_TOL and d["track"] <= TRACK_TOL, d
    assert d["top"][0] == d["top"][1], d


REAL = ["gtzan/clips/disco/disco.00000.wav", "gtzan/clips/metal/metal.00000.wav",
        "gtzan/audio/rock/rock.00000.opus", "gtzan/audio/classical/classical.00002.opus",
        "free-music/librosa-examples/drum_and_bass_stem/admiralbob77_-_Choice_-_Drum-bass.hq.ogg"]


@pytest.mark.shared_data
@pytest.mark.parametrize("rel", REAL, ids=[Path(r).name[:24] for r in REAL])
def test_real_timeline_matches_server(page, predictor, rel):
    path = SHARED_DATA / rel
    if not path.is_file():
        pytest.skip(f"{path} is not present")
    d = _compare(analyse_in_page(page, path), predictor.predict(path).to_dict(timeline=True))
    assert d["window"] <= WINDOW_TOL and d["track"] <= TRACK_TOL, d
    assert d["top"][0] == d["top"][1], d


@pytest.mark.shared_data
@pytest.mark.parametrize("rel", REAL[:3:2], ids=[Path(r).name[:24] for r in REAL[:3:2]])
def test_real_timeline_of_the_default_model(page, rel):
    """genre10, the default (a head behind both musicnn taggers), in the browser vs the server."""
    from genrescope.inference.predict import Predictor

    path = SHARED_DATA / rel
    if not path.is_file():
        pytest.skip(f"{path} is not present")
    set_model = "m => { document.getElementById('model').value = m; }"  # no change event: no re-analysis
    page.evaluate(set_model, "genre10")
    try:
        result = analyse_in_page(page, path)
    finally:
        page.evaluate(set_model, MODEL)
    d = _compare(result, Predictor("genre10", backend="onnxruntime").predict(path).to_dict(timeline=True))
    assert d["window"] <= GENRE10_WINDOW_TOL and d["track"] <= GENRE10_TRACK_TOL, d
    assert d["top"][0] == d["top"][1], d


def test_same_samples_same_timeline(page, predictor, tmp_path):
    """Given the server's decoded samples, the browser's timeline is the server's (to rounding)."""
    import soundfile as sf

    from genrescope.audio.decode import load_audio

    path = tmp_path / "s.wav"
    sf.write(str(path), song(44100, 12.0, 2, seed=5), 44100, subtype="FLOAT")
    server = predictor.predict(path).to_dict(timeline=True)
    y = load_audio(path, sr=16000)
    b64 = base64.b64encode(np.ascontiguousarray(y, np.float32).tobytes()).decode()
    result = page.evaluate(f"""async (s) => {{
        const toF32 = {JS_F32};
        return await window.genrescope.local.analyseSamples(toF32(s), 's.wav', 0, '{MODEL}', () => {{}}); }}""", b64)
    d = _compare(result, server)
    assert d["window"] <= 1e-3 and d["track"] <= 1e-3, d
    assert d["top"][0] == d["top"][1]


@pytest.mark.parametrize("head", ["head", "head2"])
def test_a_head_behind_a_backbone_runs_as_two_stages(page, web_dir, tmp_path, head):
    """The manifest's head (the backbone's one graph gives the row and the tags -> the head's graph)
    gives the Python composition's timeline and tags: behind musicnn-msd, and behind the musicnn
    ensemble's one fused graph (both taggers' embeddings side by side, their tags merged)."""
    import soundfile as sf

    from genrescope.audio.decode import load_audio
    from genrescope.inference.predict import Predictor

    path = tmp_path / "h.wav"
    sf.write(str(path), song(16000, 9.0, 1, seed=2), 16000, subtype="FLOAT")
    server = Predictor(web_dir.parent / f"{head}.onnx", backend="onnxruntime").predict(path).to_dict(timeline=True)
    y = load_audio(path, sr=16000)
    b64 = base64.b64encode(np.ascontiguousarray(y, np.float32).tobytes()).decode()
    result = page.evaluate(f"""async (s) => {{
        const toF32 = {JS_F32};
        return await window.genrescope.local.analyseSamples(toF32(s), 'h.wav', 0, '{head}', () => {{}}); }}""", b64)
    assert result["timeline"]["labels"] == ["calm", "busy", "loud"]
    assert 0.05 < np.max(server["timeline"]["probabilities"]) < 0.99  # not saturated: the comparison means something
    d = _compare(result, server)
    assert d["window"] <= 1e-3 and d["top"][0] == d["top"][1], d
    st = {t["label"]: t["probability"] for t in server["tags"]}
    assert [t["label"] for t in result["tags"]][:5] == [t["label"] for t in server["tags"]][:5]
    assert max(abs(t["probability"] - st[t["label"]]) for t in result["tags"]) <= 1e-3


def test_bad_file_gives_a_clear_message(page, tmp_path):
    path = tmp_path / "broken.mp3"
    path.write_bytes(os.urandom(5000))
    page.set_input_files("#file", str(path))
    page.wait_for_selector("#error:not([hidden])", timeout=30000)
    message = page.inner_text("#error-text")
    assert "broken.mp3" in message and "could not decode" in message, message
    page.click("#error-close")


# ---------------------------------------------------------------- the served page's switch, offline use
@pytest.mark.slow
def test_served_page_analyses_in_the_browser(browser, predictor, tmp_path):
    """`genrescope serve`'s page with the in-browser switch on: nothing is uploaded, the CSP lets
    the wasm run, and the result matches the server's."""
    pytest.importorskip("fastapi")
    import soundfile as sf

    from genrescope.serve.server import BackgroundServer

    path = tmp_path / "served.wav"
    sf.write(str(path), song(44100, 12.0, 2, seed=9), 44100, subtype="PCM_16")
    with BackgroundServer() as url:
        ctx = browser.new_context(service_workers="block")
        pg = ctx.new_page()
        posts, problems = [], []
        pg.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
        pg.on("pageerror", lambda e: problems.append(str(e)))
        pg.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
        pg.goto(url + "/")
        pg.wait_for_selector("#model option", state="attached")
        pg.select_option("#model", MODEL)
        pg.check("#in-browser")
        result = analyse_in_page(pg, path)
        assert not posts and not problems, (posts, problems)
        assert pg.evaluate("() => window.genrescope.mode") == "browser"
        # switched off: the server analyses, and window.genrescope.result is POST /api/predict's answer
        pg.uncheck("#in-browser")
        pg.wait_for_function("() => window.genrescope.result", timeout=120000)
        served = pg.evaluate("() => window.genrescope.result")
        import httpx

        with path.open("rb") as f:
            api = httpx.post(url + "/api/predict", files={"file": (path.name, f, "audio/wav")},
                             data={"model": MODEL, "top": "0"}, timeout=120).json()
        assert served == api
        assert set(result) == set(api) and result["genres"][0]["label"] == api["genres"][0]["label"]
        ctx.close()
    d = _compare(result, predictor.predict(path).to_dict(timeline=True))
    assert d["window"] <= WINDOW_TOL and d["track"] <= TRACK_TOL and d["top"][0] == d["top"][1], d


def sw_ready(pg, timeout_s: float = 60.0) -> bool:
    """Wait for the service worker with a deadline (a failed install would otherwise hang the test)."""
    return pg.evaluate(f"""() => Promise.race([navigator.serviceWorker.ready.then(() => true),
        new Promise((resolve) => setTimeout(() => resolve(false), {int(timeout_s * 1000)}))])""")


def test_works_offline_after_the_first_visit(browser, web_dir, tmp_path):
    """Installable app: load once (the service worker caches the page, the runtime and the model),
    then stop the server, go offline, reload and analyse a file."""
    import soundfile as sf

    path = tmp_path / "offline.wav"
    sf.write(str(path), song(48000, 8.0, 1, seed=11), 48000, subtype="PCM_16")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", "-b", "127.0.0.1", "-d", str(web_dir), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ctx = browser.new_context()
        pg = ctx.new_page()
        for _ in range(100):
            try:
                pg.goto(f"http://127.0.0.1:{port}/")
                break
            except sync_api.Error:
                time.sleep(0.1)
        pg.wait_for_selector("#model option", state="attached")
        assert sw_ready(pg), "the service worker never became ready (did its install fail?)"
        pg.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=30000)
        manifest = pg.evaluate("() => fetch('manifest.webmanifest').then((r) => r.json())")
        assert manifest["display"] == "standalone" and any(i["sizes"] == "512x512" for i in manifest["icons"])
    finally:
        proc.kill()
        proc.wait()
    ctx.set_offline(True)
    pg.reload()
    pg.wait_for_selector("#model option", state="attached")
    result = analyse_in_page(pg, path)
    assert result["model"] == MODEL and result["timeline"]["start_s"]
    ctx.close()


def test_served_page_offline_falls_back_to_the_browser(browser, tmp_path):
    """`genrescope serve`'s page, once loaded, still analyses with the server gone: in the browser."""
    pytest.importorskip("fastapi")
    import soundfile as sf

    from genrescope.serve.server import BackgroundServer

    path = tmp_path / "gone.wav"
    sf.write(str(path), song(48000, 6.0, 2, seed=3), 48000, subtype="PCM_16")
    ctx = browser.new_context()
    pg = ctx.new_page()
    with BackgroundServer() as url:
        pg.goto(url + "/")
        pg.wait_for_selector("#model option", state="attached")
        pg.select_option("#model", MODEL)
        assert sw_ready(pg), "the service worker never became ready (did its install fail?)"
        pg.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=30000)
        # the default model's graphs are precached; the one used here is fetched (and cached) once
        pg.evaluate(f"() => window.genrescope.local.load('{MODEL}')")
    ctx.set_offline(True)
    pg.reload()
    pg.wait_for_selector("#model option", state="attached")
    assert pg.evaluate("() => window.genrescope.mode") == "browser"
    assert "analysing in this browser instead" in pg.inner_text("#error-text")
    pg.select_option("#model", MODEL)
    result = analyse_in_page(pg, path)
    assert result["model"] == MODEL
    ctx.close()
