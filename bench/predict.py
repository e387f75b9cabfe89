"""Real-time factor of `genrescope predict` on a 4-minute song, one CPU core.

Measures, in one run and on the same file:
  * the whole `genrescope predict` process (interpreter start-up, imports, model load,
    decode, features, model), pinned to one core with one thread;
  * the same work in-process, split by stage (model load, decode + features, model);
  * a baseline pipeline built the way the original musicnn extractor works: librosa.load
    at 16 kHz, librosa's mel spectrogram, and one 3 s patch per model call (same ONNX
    model, so only the pipeline differs).
Prints x real time (seconds of audio per second of wall time) and the ratios.

    python bench/predict.py [--audio FILE] [--minutes 4] [--model musicnn] [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")}
os.environ.update(ONE_THREAD)
try:
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
except (AttributeError, OSError):
    pass

import numpy as np  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def make_song(minutes: float, out: Path) -> Path:
    """A 44.1 kHz stereo MP3 of real music when ../shared/data is present, else generated."""
    import soundfile as sf

    sr = 44100
    need = int(minutes * 60 * sr)
    parts, have = [], 0
    for f in sorted((SHARED / "free-music" / "warzone2100").glob("*.opus")) + \
            sorted((SHARED / "free-music" / "wesnoth").glob("*.ogg")):
        if f.name == "silence.ogg":
            continue
        from genrescope.audio import load_audio

        y = load_audio(f, sr=sr, mono=False)
        parts.append(y)
        have += len(y)
        if have >= need:
            break
    if have >= need:
        y = np.concatenate(parts)[:need]
        what = "real music (Warzone 2100 soundtrack)"
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from conftest import synth_music

        y = synth_music(minutes * 60, sr, channels=2)
        what = "generated music"
    sf.write(str(out), y, sr, format="MP3")
    print(f"input: {minutes:g} min, 44.1 kHz stereo MP3 of {what}, {out.stat().st_size / 1e6:.1f} MB")
    return out


def whole_process(path: Path, model: str, repeat: int) -> float:
    cmd = [sys.executable, "-m", "genrescope", "predict", str(path), "--model", model, "-j", "1", "--threads", "1",
           "--format", "json"]
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **ONE_THREAD})
        best = min(best, time.perf_counter() - t0)
        if r.returncode != 0:
            raise SystemExit(f"predict failed: {r.stderr[-2000:]}")
    return best


def in_process(path: Path, model: str, repeat: int) -> dict:
    from genrescope.predict import Predictor

    t0 = time.perf_counter()
    pred = Predictor(model, threads=1)
    load = time.perf_counter() - t0
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        p = pred.predict(path)
        total = time.perf_counter() - t0
        if best is None or total < best["total"]:
            best = {"total": total, **p.seconds, "windows": len(p.timeline.probs), "duration": p.duration_s}
    best["load"] = load
    return best


def baseline(path: Path, model: str, repeat: int) -> dict | None:
    try:
        import librosa
    except ImportError:
        print("librosa not installed: baseline skipped")
        return None
    from genrescope.registry import load_inference_model

    m = load_inference_model(model, threads=1)
    cfg = m.feature_config
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        y, _ = librosa.load(str(path), sr=cfg.sr)
        t1 = time.perf_counter()
        mel = librosa.feature.melspectrogram(y=y, sr=cfg.sr, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                                             n_mels=cfg.n_mels, pad_mode="reflect")
        x = np.log10(10000 * mel + 1).astype(np.float32)
        t2 = time.perf_counter()
        w = m.window_frames
        for s in range(0, x.shape[1] - w + 1, w):  # one patch per call, trailing partial patch dropped
            m.predict_windows(x[None, :, s:s + w])
        t3 = time.perf_counter()
        row = {"total": t3 - t0, "decode": t1 - t0, "features": t2 - t1, "model": t3 - t2}
        if best is None or row["total"] < best["total"]:
            best = row
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--audio", default=None, help="an audio file (default: a 4-minute MP3 made here)")
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--model", default="musicnn")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = Path(args.audio) if args.audio else make_song(args.minutes, Path(d) / "song.mp3")
        ip = in_process(path, args.model, args.repeat)
        dur = ip["duration"]
        wp = whole_process(path, args.model, args.repeat)
        bl = baseline(path, args.model, args.repeat)
    print(f"model {args.model}; one core, one thread; best of {args.repeat}\n")
    print(f"{'':34}{'seconds':>9}{'x real time':>13}")
    print(f"{'whole `genrescope predict` process':34}{wp:9.3f}{dur / wp:13.0f}")
    print(f"{'in-process predict (model loaded)':34}{ip['total']:9.3f}{dur / ip['total']:13.0f}")
    print(f"{'  decode + features (streamed)':34}{ip['decode+features']:9.3f}{dur / ip['decode+features']:13.0f}")
    print(f"{'  model ({} windows x members)'.format(ip['windows']):34}{ip['model']:9.3f}{dur / ip['model']:13.0f}")
    print(f"{'model load':34}{ip['load']:9.3f}")
    if bl:
        print(f"\nbaseline (librosa.load + librosa mel + one patch per call, same ONNX model):")
        for k in ("decode", "features", "model", "total"):
            print(f"  {k:32}{bl[k]:9.3f}{dur / bl[k]:13.0f}")
        print(f"\nratio in-process genrescope / baseline: {bl['total'] / ip['total']:.2f}x faster")
        print(f"ratio whole genrescope process / baseline pipeline alone: {bl['total'] / wp:.2f}x")
    target = 100
    print(f"\ntarget: whole process >= {target}x real time: {'met' if dur / wp >= target else 'NOT met'} "
          f"({dur / wp:.0f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
