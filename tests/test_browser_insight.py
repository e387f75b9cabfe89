"""The page's segments and saliency in a real browser, held to the Python insight code:
static/insight.js (Viterbi) against insight/segments.py on the same timelines, and the worker's
occlusion saliency against insight/saliency.py on the same samples."""
from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from helpers.page import CHROMIUM, JS_F32, MODEL, analyse_in_page, song

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)
pytest.importorskip("playwright.sync_api")

from conftest import SHARED_DATA  # noqa: E402

from genrescope.inference.predict import Timeline
from genrescope.insight.segments import segment_timeline


def _screenshot(page) -> None:
    """The serverless page: tests/artifacts/serverless.png; with GENRESCOPE_UPDATE_DOCS=1 (and the
    occlusion overlay, which takes a minute) also docs/serverless.png."""
    import os
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    artifacts = Path(os.environ.get("GENRESCOPE_ARTIFACTS", root / "tests" / "artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    update = os.environ.get("GENRESCOPE_UPDATE_DOCS") == "1"
    if update:
        page.click("#saliency-btn")
        page.wait_for_function("() => window.genrescope.saliency", timeout=600000)
    page.screenshot(path=str(artifacts / "serverless.png"), full_page=True)
    if update:
        shutil.copyfile(artifacts / "serverless.png", root / "docs" / "serverless.png")


def _py_segments(tl: dict, genres: list[dict], cost: float) -> list[dict]:
    t = Timeline(np.array(tl["start_s"]), np.array(tl["end_s"]), np.array(tl["probabilities"]), tl["labels"])
    return segment_timeline(t, [(g["label"], g["probability"]) for g in genres], switch_cost=cost)


@pytest.mark.parametrize("seed", range(6))
def test_js_segments_equal_python_segments(page, seed):
    rng = np.random.default_rng(seed)
    n, g = int(rng.integers(1, 40)), int(rng.integers(2, 12))
    labels = [f"g{i}" for i in range(g)]
    blocks = np.repeat(rng.integers(0, g, size=5), -(-n // 5))[:n]
    probs = rng.dirichlet(np.ones(g) * 0.5, size=n) * 0.5 + 0.5 * np.eye(g)[blocks]
    probs = np.round(probs, 4)
    start = np.round(np.arange(n) * 1.5, 3)
    tl = {"labels": labels, "start_s": start.tolist(), "end_s": np.round(start + 3.0, 3).tolist(),
          "probabilities": probs.tolist()}
    mean = probs.mean(axis=0)
    genres = [{"label": labels[i], "probability": float(mean[i])} for i in np.argsort(-mean, kind="stable")]
    for cost in (0.0, 1.0, 4.0, 50.0):
        js = page.evaluate("""async ([tl, g, c]) => { const m = await window.genrescope.local.models();
            const { segments } = await import(new URL('static/insight.js', document.baseURI));
            return segments(tl, g, c, m.segments.max_genres); }""", [tl, genres, cost])
        assert js == _py_segments(tl, genres, cost), (seed, cost)


@pytest.mark.slow
def test_worker_saliency_equals_python(page, predictor, tmp_path):
    import soundfile as sf

    from genrescope.audio.decode import load_audio
    from genrescope.insight.saliency import occlusion_saliency

    path = tmp_path / "sal.wav"
    sf.write(str(path), song(16000, 7.0, 1, seed=4), 16000, subtype="FLOAT")
    want = occlusion_saliency(predictor, path)
    y = load_audio(path, sr=16000)
    b64 = base64.b64encode(np.ascontiguousarray(y, np.float32).tobytes()).decode()
    got = page.evaluate(f"""async ([s, labels]) => {{
        const toF32 = {JS_F32};
        await window.genrescope.local.analyseSamples(toF32(s), 'sal.wav', 0, '{MODEL}', () => {{}});
        return await window.genrescope.local.saliency(labels); }}""", [b64, want["labels"]])
    assert got["method"] == "occlusion" and got["occlude_s"] == want["occlude_s"]
    assert got["start_s"] == want["start_s"] and got["end_s"] == want["end_s"]
    diff = np.abs(np.subtract(got["drop"], want["drop"])).max()
    assert diff <= 2e-3, diff
    assert np.abs(want["drop"]).max() > 0.01  # the drops are not all zero: the comparison means something


@pytest.mark.slow
def test_page_shows_segments_and_a_saliency_overlay(page, tmp_path):
    import soundfile as sf

    n = 44100 * 9
    a, b = song(44100, 9.0, 2, seed=1), np.zeros((n, 2), np.float32)
    b[:, 0] = b[:, 1] = 0.3 * np.sin(2 * np.pi * 196 * np.arange(n) / 44100) * \
        (0.6 + 0.4 * np.sin(2 * np.pi * 0.3 * np.arange(n) / 44100))
    path = tmp_path / "two_parts.wav"
    sf.write(str(path), np.concatenate([a, b]), 44100, subtype="PCM_16")
    result = analyse_in_page(page, path)
    segs = page.evaluate("() => window.genrescope.segments")
    assert segs == _py_segments(result["timeline"], result["genres"], 4.0)
    assert page.locator("#segments .seg").count() == len(segs)
    page.click("#saliency-btn")
    page.wait_for_function("() => window.genrescope.saliency", timeout=120000)
    assert page.locator("#chart .saliency").count() > 0
    assert "drops when each half second is silenced" in page.inner_text("#saliency-note")


@pytest.mark.shared_data
@pytest.mark.slow
def test_medley_segments_on_the_page(page):
    """Real GTZAN excerpts end to end, analysed in the browser: the page's segments land near the joins."""
    import soundfile as sf

    from genrescope.audio.decode import load_audio

    parts = [SHARED_DATA / "gtzan" / "clips" / g / f"{g}.00000.wav" for g in ("metal", "classical", "disco", "jazz")]
    if not all(p.is_file() for p in parts):
        pytest.skip("GTZAN clips not present")
    ys = [load_audio(p, sr=22050) for p in parts]
    joins = np.cumsum([len(y) / 22050 for y in ys])[:-1]
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "medley.wav"
        sf.write(str(path), np.concatenate(ys), 22050, subtype="PCM_16")
        result = analyse_in_page(page, path)
    segs = page.evaluate("() => window.genrescope.segments")
    assert segs == _py_segments(result["timeline"], result["genres"], 4.0)
    _screenshot(page)
    # every boundary the page draws lies within one window of a true join (the disco excerpt's "funk"
    # stretch is near the switching cost: the Python path splits it off, the browser's samples may not)
    assert len(segs) >= 2
    assert all(np.abs(joins - s["start_s"]).min() <= 2.992 for s in segs[1:]), (segs, joins)
