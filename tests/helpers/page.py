"""Helpers of the browser tests (the page in Debian's Chromium through Playwright): the page's
launch arguments, generated songs, and calls into the page's JavaScript."""
from __future__ import annotations

import base64
import socket
from pathlib import Path

import numpy as np

CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
MODEL = "musicnn-msd"
JS_B64 = """(a) => { const u8 = new Uint8Array(a.buffer, a.byteOffset, a.byteLength); let s = '';
  for (let i = 0; i < u8.length; i += 32768) s += String.fromCharCode.apply(null, u8.subarray(i, i + 32768));
  return btoa(s); }"""
JS_F32 = "(s) => { const b = atob(s); const u8 = new Uint8Array(b.length); " \
         "for (let i = 0; i < b.length; i++) u8[i] = b.charCodeAt(i); return new Float32Array(u8.buffer); }"


def song(sr: int, seconds: float = 20.0, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Chords, a kick, hats and a bass line: (n,) or (n, channels) float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    beat = 60 / 124
    ph = t % beat
    kick = np.sin(2 * np.pi * (50 + 120 * np.exp(-ph * 30)) * ph) * np.exp(-ph * 10)
    hats = rng.standard_normal(len(t)) * np.exp(-((t + beat / 2) % beat) * 60) * 0.2
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) * (0.5 + 0.5 * np.exp(-(t % (4 * beat))))
    bass = 0.3 * np.sign(np.sin(2 * np.pi * 55 * t)) * np.exp(-(t % (beat / 2)) * 6)
    y = (0.3 * kick + hats + 0.08 * chord + 0.3 * bass).astype(np.float32) * 0.6
    if channels == 1:
        return y
    return np.stack([y * 0.9, np.roll(y, 37) * 0.7], axis=1).astype(np.float32)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def js_features(page, y: np.ndarray, config: dict, kind: str = "log_mel") -> np.ndarray:
    """The worker's features of mono float32 samples ``y``, as (n_bins, n_frames)."""
    b64 = base64.b64encode(np.ascontiguousarray(y, np.float32).tobytes()).decode()
    out = page.evaluate(f"""async ([s, cfg, kind]) => {{
        const toF32 = {JS_F32}, toB64 = {JS_B64};
        const r = await window.genrescope.local.features(toF32(s), cfg, kind);
        return [toB64(r.data), r.n_bins, r.n_frames]; }}""", [b64, config, kind])
    return np.frombuffer(base64.b64decode(out[0]), np.float32).reshape(out[1], out[2])


def analyse_in_page(page, path: Path, timeout_ms: int = 180000) -> dict:
    page.evaluate("() => { window.genrescope.result = null; }")
    page.set_input_files("#file", str(path))
    page.wait_for_function("() => window.genrescope.result || !document.getElementById('error').hidden",
                           timeout=timeout_ms)
    result = page.evaluate("() => window.genrescope.result")
    assert result is not None, page.inner_text("#error-text")
    return result


def manifest_config(web_dir: Path) -> dict:
    import json

    return json.loads((web_dir / "webmodels" / "manifest.json").read_text())["models"][0]["feature_config"]


