"""Real-time factor of `genrescope predict` on a 4-minute song, one CPU core.

Measures, in one run and on the same file:
  * the whole `genrescope predict` process (interpreter start-up, imports, model load,
    decode, features, model), pinned to one core with one thread;
  * the same work in-process, split by stage (model load, decode + features, model);
  * a baseline pipeline built the way the original musicnn extractor works: librosa.load
    at 16 kHz, librosa's mel spectrogram, and one 3 s patch per model call (same ONNX
    model, so only the pipeline differs).
  * the arithmetic: multiply-adds of one window through the model's ONNX graph(s), and this
    core's single-thread SGEMM rate measured in the same run, which bound how fast any
    exact float32 implementation of the model can be here.
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
        from genrescope.audio.decode import load_audio

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
    from genrescope.inference.predict import Predictor

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
    from genrescope.inference.runtimes import load_inference_model

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


def model_macs_per_window(model: str) -> tuple[float, list[str]]:
    """Multiply-adds of one window through every ONNX graph of ``model`` (Conv, MatMul, Gemm).

    The shapes come from running the graph once on a window with every such node's input
    and output exposed (musicnn's padding is computed in the graph, so static shape
    inference cannot see them).
    """
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    from genrescope.inference.onnx_model import INPUT_NAME, OnnxModel
    from genrescope.inference.registry import ENSEMBLES, resolve_model_path

    total, names = 0.0, list(ENSEMBLES.get(model, (model,)))
    for name in names:
        path = resolve_model_path(name)[1]
        om = OnnxModel(path)
        proto = onnx.load(str(path))
        weights = {t.name: numpy_helper.to_array(t).shape for t in proto.graph.initializer}
        nodes = [n for n in proto.graph.node if n.op_type in ("Conv", "MatMul", "Gemm")]
        have = {o.name for o in proto.graph.output}
        for t in {t for n in nodes for t in (n.input[0], n.input[1], n.output[0])} - have - set(weights):
            proto.graph.output.append(helper.make_empty_tensor_value_info(t))
        sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        if om.input_kind == "table":
            x = np.zeros((1, om.n_bins), np.float32)
        else:  # one window (3 s of a whole-song model)
            x = np.zeros((1, om.n_bins, om.window_frames or int(3 * om.feature_config.frame_rate)), np.float32)
        shapes = dict(zip([o.name for o in sess.get_outputs()], [v.shape for v in sess.run(None, {INPUT_NAME: x})]))
        shapes.update(weights)
        for n in nodes:
            out = shapes[n.output[0]]
            if n.op_type == "Conv":
                total += float(np.prod(out)) * float(np.prod(weights[n.input[1]][1:]))
            else:
                a = shapes[n.input[0]]
                trans_a = any(at.name == "transA" and at.i for at in n.attribute)
                total += float(np.prod(out)) * float(a[-2] if trans_a else a[-1])
    return total, names


def sgemm_gflops(n: int = 2048, repeat: int = 5) -> float:
    """This core's single-thread float32 matrix-multiply rate (numpy's BLAS), best of ``repeat``."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    a @ a
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


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
        print("\nbaseline (librosa.load + librosa mel + one patch per call, same ONNX model):")
        for k in ("decode", "features", "model", "total"):
            print(f"  {k:32}{bl[k]:9.3f}{dur / bl[k]:13.0f}")
        print(f"\nratio in-process genrescope / baseline: {bl['total'] / ip['total']:.2f}x faster")
        print(f"ratio whole genrescope process / baseline pipeline alone: {bl['total'] / wp:.2f}x")
    macs, graphs = model_macs_per_window(args.model)
    gemm = sgemm_gflops()
    flop = 2 * macs * ip["windows"]
    floor = flop / (gemm * 1e9)
    # everything but the model: start-up, imports, load, decode, features (separate runs: clamp the noise)
    rest = max(wp - ip["model"], ip["decode+features"])
    print(f"\narithmetic: {2 * macs / 1e9:.2f} GFLOP per window ({' + '.join(graphs)}), "
          f"{flop / 1e9:.0f} GFLOP for {ip['windows']} windows")
    print(f"this core's single-thread SGEMM (numpy, 2048 x 2048): {gemm:.0f} GFLOP/s; the model stage ran at "
          f"{flop / ip['model'] / 1e9:.0f} GFLOP/s = {flop / ip['model'] / 1e9 / gemm:.2f} of it")
    print(f"floor: at the SGEMM rate the model alone needs {floor:.2f} s, so the whole process cannot beat "
          f"{dur / (rest + floor):.0f}x real time on this core without fewer or cheaper operations "
          f"(the rest of the process took {rest:.2f} s)")
    target = 100
    print(f"\ntarget: whole process >= {target}x real time: {'met' if dur / wp >= target else 'NOT met'} "
          f"({dur / wp:.0f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
