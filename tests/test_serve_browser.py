"""The page in a real browser: Debian's Chromium driven by Playwright, against a server on
127.0.0.1 started here. Screenshots go to $GENRESCOPE_ARTIFACTS (default tests/artifacts/);
with GENRESCOPE_UPDATE_DOCS=1 the upload screenshot also replaces docs/screenshot.png.

Skipped when /usr/bin/chromium, Playwright or the web extra is missing."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("GENRESCOPE_ARTIFACTS", ROOT / "tests" / "artifacts"))

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api")

BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-quic", "--autoplay-policy=no-user-gesture-required"]


def two_halves(sr: int = 22050) -> np.ndarray:
    """10 s of a sustained string-like chord, then 10 s of drum-machine beats with a bass."""
    rng = np.random.default_rng(7)
    t = np.arange(10 * sr) / sr
    vib = 1 + 0.004 * np.sin(2 * np.pi * 5.5 * t)
    chord = sum(sum(np.sin(2 * np.pi * f * h * vib * t) / h ** 1.5 for h in range(1, 8)) for f in (196.0, 246.9, 293.7))
    strings = 0.08 * chord * np.minimum(1, t / 1.5)
    beat = 60 / 128
    ph = t % beat
    kick = np.sin(2 * np.pi * (50 + 120 * np.exp(-ph * 30)) * ph) * np.exp(-ph * 12)
    hat_ph = (t + beat / 2) % beat
    hats = rng.standard_normal(len(t)) * np.exp(-hat_ph * 60) * 0.3
    bass = 0.3 * np.sign(np.sin(2 * np.pi * 55 * t)) * np.exp(-(t % (beat / 2)) * 8)
    drums = 0.35 * (kick + hats + bass)
    return np.concatenate([strings, drums]).astype(np.float32)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import soundfile as sf

    d = tmp_path_factory.mktemp("browser")
    sf.write(str(d / "two_halves.wav"), two_halves(), 22050)
    (d / "broken.mp3").write_bytes(os.urandom(6000))
    mic = np.tile(two_halves(48000)[10 * 48000:], 2)  # the beats, 20 s, for the fake microphone
    sf.write(str(d / "mic.wav"), mic, 48000, subtype="PCM_16")
    return d


@pytest.fixture(scope="module")
def server():
    from genrescope.serve.server import BackgroundServer

    with BackgroundServer() as url:
        yield url


def _launch(p, extra=()):
    return p.chromium.launch(executable_path=CHROMIUM, args=[*BROWSER_ARGS, *extra])


def _bars(page, selector: str) -> dict[str, float]:
    text = page.inner_text(selector)
    return {m.group(1).strip().lower(): int(m.group(2)) / 100
            for m in re.finditer(r"^(.+?)\s*\n?\s*(\d+)%\s*$", text, flags=re.M)}


def _watch(page, server: str) -> list[str]:
    """Problems to fail on: page errors, CSP refusals, any request that leaves this server."""
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("console", lambda m: problems.append(f"console: {m.text}")
            if m.type == "error" and "Content Security Policy" in m.text else None)
    page.on("request", lambda r: problems.append(f"request off the server: {r.url}")
            if not r.url.startswith((server, "blob:", "data:")) else None)
    return problems


def _open(browser, server: str):
    """The page of ``server`` in a new tab, ready (its model list in): (page, problems to fail on)."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors = _watch(page, server)
    page.goto(server + "/")
    page.wait_for_selector("#model option", state="attached")
    return page, errors


def _analyse(page, path, timeout_ms: int = 60000) -> None:
    """Upload ``path`` and wait until the page says the analysis is done."""
    page.set_input_files("#file", str(path))
    page.wait_for_function("() => document.getElementById('state').textContent.trim() === 'done'", timeout=timeout_ms)


def _seek(page, t: float) -> None:
    page.evaluate("t => new Promise(res => { const a = document.getElementById('player');"
                  " a.addEventListener('seeked', () => res(), {once: true}); a.currentTime = t; })", t)
    page.wait_for_timeout(300)


def _shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.mark.slow
def test_upload_play_seek_and_errors(server, files):
    with sync_api.sync_playwright() as p:
        browser = _launch(p)
        page, errors = _open(browser, server)
        _analyse(page, files / "two_halves.wav")
        assert "0:20" in page.inner_text("#meta")
        ranking = _bars(page, "#genres")
        assert len(ranking) >= 3 and all(0 <= v <= 1 for v in ranking.values())

        # playback moves the current-genre chart (timeupdate path)
        page.evaluate("() => document.getElementById('player').play()")
        page.wait_for_function("() => document.getElementById('player').currentTime >= 1.2", timeout=20000)
        t_now, shown_t, source = page.evaluate(
            "() => [document.getElementById('player').currentTime, +document.getElementById('now-bars').dataset.time,"
            " document.getElementById('now-bars').dataset.source]")
        updates = page.evaluate("() => window.genrescope.debug.updates")
        page.evaluate("() => document.getElementById('player').pause()")
        assert t_now > 0.3, "headless playback did not advance"
        assert updates["timeupdate"] > 0 and source == "timeupdate"
        assert abs(shown_t - t_now) < 0.6  # the bars show the playback position, not a stale one
        # the clock shows the playback position (past 0:01 now), not the start
        page.wait_for_function("() => { const t = Math.floor(document.getElementById('player').currentTime);"
                               " return document.getElementById('now-time').textContent.trim() === "
                               "`${Math.floor(t / 60)}:${String(t % 60).padStart(2, '0')}`; }", timeout=5000)
        assert page.inner_text("#now-time").strip() not in ("", "0:00")

        # seeking moves everything: the strings half and the drums half read differently
        _seek(page, 4.0)
        early = _bars(page, "#now-bars")
        assert page.inner_text("#now-time").strip() == "0:04"
        _seek(page, 17.0)
        late = _bars(page, "#now-bars")
        assert page.inner_text("#now-time").strip() == "0:17"
        assert early and late
        diff = max(abs(early.get(k, 0) - late.get(k, 0)) for k in set(early) | set(late))
        assert diff >= 0.05, (early, late)
        assert max(early, key=early.get) != max(late, key=late.get) or diff >= 0.1
        shot = _shot(page, "upload.png")
        if os.environ.get("GENRESCOPE_UPDATE_DOCS") == "1":
            (ROOT / "docs").mkdir(exist_ok=True)
            shutil.copyfile(shot, ROOT / "docs" / "screenshot.png")

        # a corrupt file: a clear message, and the page stays usable
        page.set_input_files("#file", str(files / "broken.mp3"))
        page.wait_for_selector("#error:not([hidden])", timeout=30000)
        message = page.inner_text("#error-text")
        assert "broken.mp3" in message and ("not audio" in message or "decoded" in message), message
        _shot(page, "error.png")
        page.click("#error-close")
        _analyse(page, files / "two_halves.wav")
        assert page.is_hidden("#error")

        # phone width: no horizontal scrolling
        page.set_viewport_size({"width": 375, "height": 800})
        page.wait_for_timeout(300)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 380
        _shot(page, "phone.png")
        assert not errors, errors
        browser.close()


def test_microphone_gives_a_live_estimate(server, files):
    with sync_api.sync_playwright() as p:
        browser = _launch(p, ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                              f"--use-file-for-fake-audio-capture={files / 'mic.wav'}"])
        page, errors = _open(browser, server)
        page.click("#record")
        page.wait_for_selector("#live:not([hidden])", timeout=10000)
        page.wait_for_function("() => window.genrescope.debug.estimates >= 2", timeout=40000)
        bars = _bars(page, "#live-bars")
        assert len(bars) >= 3 and all(0 <= v <= 1 for v in bars.values())
        _shot(page, "microphone.png")
        page.click("#record")  # stop
        page.wait_for_timeout(500)
        assert page.get_attribute("#record", "aria-pressed") == "false"
        assert not errors, errors
        browser.close()


@pytest.mark.slow
def test_whole_song_timeline_is_smoothed_aligned_and_server_mode_has_no_saliency_button(server, tmp_path):
    """A long song in server mode: the chart draws the smoothed belief and says so, the raw
    windows come on demand, the segments bar spans exactly the plot area, and the saliency
    button (which reruns the model in the browser) is not offered for a server's analysis."""
    import soundfile as sf

    rng = np.random.default_rng(3)
    halves = two_halves()
    song = np.concatenate([halves * rng.uniform(0.5, 1.0) for _ in range(8)])  # 160 s: 8 string/beat pairs
    sf.write(str(tmp_path / "long.wav"), song, 22050)
    with sync_api.sync_playwright() as p:
        browser = _launch(p)
        page, errors = _open(browser, server)
        _analyse(page, tmp_path / "long.wav", timeout_ms=240000)
        assert page.is_hidden("#saliency-btn")
        note = page.locator("#chart-note")
        assert note.get_attribute("data-view") == "smoothed" and "12 s" in note.inner_text()
        # the drawn lines are the raw windows smoothed: far less jitter, same number of points
        wiggle = """() => { const g = window.genrescope, u = g.chart, j = g.job, k = j.gidx[0];
            const tv = (a) => a.slice(1).reduce((s, v, i) => s + Math.abs(v - a[i]), 0);
            return [u.data[1].length, j.probs.length, tv(Array.from(u.data[1])), tv(j.probs.map((r) => r[k]))]; }"""
        n_drawn, n_raw, drawn, raw = page.evaluate(wiggle)
        assert n_drawn == n_raw >= 50 and drawn < 0.5 * raw, (drawn, raw)
        # the segments bar lies exactly under the plot area (not 20-25 px past it)
        edges = page.evaluate("""() => { const a = window.genrescope.chart.over.getBoundingClientRect(),
            b = document.getElementById('segments').getBoundingClientRect(); return [a.left, a.right, b.left, b.right]; }""")
        assert abs(edges[0] - edges[2]) <= 1 and abs(edges[1] - edges[3]) <= 1, edges
        _shot(page, "timeline-smoothed.png")
        page.check("#raw-toggle")
        assert note.get_attribute("data-view") == "raw"
        n_drawn, n_raw, drawn, raw = page.evaluate(wiggle)
        assert drawn == pytest.approx(raw, rel=1e-6)
        _shot(page, "timeline-raw.png")
        page.set_viewport_size({"width": 800, "height": 900})
        page.wait_for_timeout(400)  # the resize handler
        edges = page.evaluate("""() => { const a = window.genrescope.chart.over.getBoundingClientRect(),
            b = document.getElementById('segments').getBoundingClientRect(); return [a.left, a.right, b.left, b.right]; }""")
        assert abs(edges[0] - edges[2]) <= 1 and abs(edges[1] - edges[3]) <= 1, edges
        assert not errors, errors
        browser.close()
