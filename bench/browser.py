"""In-browser analysis speed: headless Debian Chromium running the page `genrescope export --web`
writes (Web Audio decoding, the JS features in a worker, onnxruntime-web wasm on one thread),
beside the server's Python path (genrescope.inference.Predictor) on the same file, in one run.

Prints, for a song of --minutes (a real 44.1 kHz stereo recording from ../shared/data cut to
length when present, else generated audio): wall time per stage in the browser (decode +
resample, features, model), ms per model window, seconds per song, and the same for the
Python path with one thread and with ONNX Runtime's default threads; then the ratios.

    python bench/browser.py [--minutes 4] [--model musicnn-msd] [--repeat 2]
"""
from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL = SHARED / "free-music" / "wesnoth" / "heroes_rite.ogg"


def make_song(minutes: float, out: Path) -> tuple[Path, str]:
    import soundfile as sf

    n = int(minutes * 60 * 44100)
    if REAL.is_file():
        y, _ = sf.read(str(REAL), dtype="float32", always_2d=True)
        y = np.tile(y, (int(np.ceil(n / len(y))), 1))[:n]
        what = f"{REAL.name} (real, 44.1 kHz stereo), looped/cut to {minutes:g} min"
    else:
        from genrescope.testing import synth_music

        y = synth_music(minutes * 60, 44100, channels=2)
        what = f"generated 44.1 kHz stereo, {minutes:g} min"
    path = out / "song.wav"
    sf.write(str(path), y, 44100, subtype="PCM_16")
    return path, what


def browser_runs(site: Path, song: Path, model: str, repeat: int) -> list[dict]:
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "http.server", "-b", "127.0.0.1", "-d", str(site), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    out = []
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = b.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#model option", state="attached")
            page.select_option("#model", model)
            for _ in range(repeat):
                page.evaluate("() => { window.genrescope.result = null; }")
                page.set_input_files("#file", str(song))
                page.wait_for_function("() => window.genrescope.result", timeout=900000)
                out.append(page.evaluate("() => window.genrescope.local.timing"))
            out[-1]["result"] = page.evaluate("() => window.genrescope.result")
            out[-1]["feature_diff"] = feature_parity(page, song)
            b.close()
    finally:
        proc.kill()
    return out


def feature_parity(page, song: Path) -> float:
    """max |JS - Python| of the model's log-mel on the first 30 s, from the same (Python-decoded) samples."""
    import base64
    import json

    from genrescope.audio.decode import load_audio
    from genrescope.config import FeatureConfig
    from genrescope.features.spectrogram import log_mel

    entry = page.evaluate("() => window.genrescope.local.manifest.models[0]")
    cfg = FeatureConfig.from_dict(entry["feature_config"])
    y = load_audio(song, sr=cfg.sr, duration=30.0)
    b64 = base64.b64encode(y.astype(np.float32).tobytes()).decode()
    got = page.evaluate("""async ([s, cfg]) => {
        const b = atob(s), u8 = new Uint8Array(b.length);
        for (let i = 0; i < b.length; i++) u8[i] = b.charCodeAt(i);
        const r = await window.genrescope.local.features(new Float32Array(u8.buffer), cfg, 'log_mel');
        let t = ''; const o = new Uint8Array(r.data.buffer);
        for (let i = 0; i < o.length; i += 32768) t += String.fromCharCode.apply(null, o.subarray(i, i + 32768));
        return [btoa(t), r.n_bins, r.n_frames]; }""", [b64, json.loads(json.dumps(cfg.to_dict()))])
    js = np.frombuffer(base64.b64decode(got[0]), np.float32).reshape(got[1], got[2])
    return float(np.abs(js - log_mel(y, cfg)).max())


def python_run(song: Path, model: str, threads: int | None) -> dict:
    from genrescope.inference.predict import Predictor

    pred = Predictor(model, threads=threads)
    t0 = time.perf_counter()
    p = pred.predict(song)
    total = time.perf_counter() - t0
    return {"total_s": total, "windows": len(p.timeline.start_s), "result": p.to_dict(timeline=True), **p.seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--model", default="musicnn-msd")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    from genrescope.serve.webexport import export_web

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        song, what = make_song(args.minutes, tmp)
        site = export_web(tmp / "site", [args.model])
        print(f"song: {what}; model {args.model}")
        runs = browser_runs(site, song, args.model, args.repeat)
        best = min(runs, key=lambda r: r["total_s"])  # the first run also compiles the wasm and loads the model
        per_window = 1000 * best["model"] / best["windows"]
        print(f"browser (headless Chromium, onnxruntime-web wasm, 1 thread), best of {len(runs)}:")
        print(f"  decode+resample {best['decode_s']:.2f} s, features {best['features']:.2f} s, model "
              f"{best['model']:.2f} s for {best['windows']} windows = {per_window:.0f} ms/window; "
              f"{best['total_s']:.1f} s per song ({best['duration_s'] / best['total_s']:.0f}x real time); "
              f"first run {runs[0]['total_s']:.1f} s (model load {runs[0]['load_s']:.2f} s)")
        print(f"features, same samples: max |JS - Python| log-mel = {runs[-1]['feature_diff']:.2e}")
        for threads in (1, None):
            r = python_run(song, args.model, threads)
            if threads == 1:
                web, py = runs[-1]["result"], r["result"]
                pw_diff = np.abs(np.subtract(web["timeline"]["probabilities"], py["timeline"]["probabilities"])).max()
                sp = {g["label"]: g["probability"] for g in py["genres"]}
                tr = max(abs(g["probability"] - sp[g["label"]]) for g in web["genres"])
                print(f"timeline, browser (Web Audio decoding + own decimation) vs Python (soxr): max |diff| per window "
                      f"{pw_diff:.3f}, per track {tr:.3f}; top genre {web['genres'][0]['label']} vs "
                      f"{py['genres'][0]['label']}")
            label = "1 thread" if threads == 1 else "default threads"
            pw = 1000 * r.get("model", float("nan")) / r["windows"]
            print(f"python Predictor ({label}): {r['total_s']:.1f} s per song, model {pw:.0f} ms/window, "
                  f"decode+features {r.get('decode+features', float('nan')):.2f} s; browser/python = "
                  f"{best['total_s'] / r['total_s']:.2f}x the time")


if __name__ == "__main__":
    main()
