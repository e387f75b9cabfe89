"""Real-time factor of `genrescope predict` on a 4-minute song, per backend, on one core and on all.

Measures, in one run and on the same file (everything is best of --repeat):
  * this core's matrix-multiply rates, one thread: numpy SGEMM (2048 x 2048) in a subprocess
    with the environment's OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, one with both unset, and
    one forced to Haswell (the BLAS kernel each used, from threadpoolctl), and torch's
    bfloat16 GEMM (needs the `train` extra);
  * the whole `genrescope predict` process (start-up, imports, model load, decode,
    features, model; peak RSS) for each installed backend, pinned to one core with one
    thread, and on every core with the defaults; ratios against today's ONNX Runtime
    float32 path measured beside them;
  * start-up + import + model load alone (a process that loads the model and exits);
  * in-process on one core: decode + features and the model stage, with the model's
    GFLOP/s and its fraction of the SGEMM and bfloat16 rates;
  * one song on two cores, model stage only: an ensemble's members side by side in two
    threads (one thread each) against one after the other with two intra-op threads each;
  * per layer, one core, one thread: each graph's layers with OpenVINO's performance
    counters (and ONNX Runtime's profiler), ms a window, share and GFLOP/s of each conv;
  * the ceiling: the model's FLOP for the song at this core's bfloat16 GEMM rate, the
    fastest the model stage could be on one core and on all;
  * --files N files of 30 s (real GTZAN tracks when ../shared/data is there) with
    `predict DIR -j 2` against `-j 1`: files per second.

    python bench/predict.py [--audio FILE] [--minutes 4] [--model default] [--repeat 3] [--files 100]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")}
BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CORES = sorted(os.sched_getaffinity(0))
TIMEOUT_S = 900  # one process; a run past this is killed and its threads' stacks printed
ORT = ("onnxruntime", "auto")
TODAY = "onnxruntime, --threads = cores"  # the float32 path as it ran before backends (see main)


def make_song(minutes: float, out: Path) -> Path:
    """A 44.1 kHz stereo MP3 of real music when ../shared/data is present, else generated."""
    import soundfile as sf

    from genrescope.audio.decode import load_audio

    sr, need, parts, have = 44100, int(minutes * 60 * 44100), [], 0
    for f in sorted((SHARED / "free-music" / "warzone2100").glob("*.opus")) + \
            sorted((SHARED / "free-music" / "wesnoth").glob("*.ogg")):
        if f.name != "silence.ogg" and have < need:
            parts.append(load_audio(f, sr=sr, mono=False))
            have += len(parts[-1])
    if have >= need:
        y, what = np.concatenate(parts)[:need], "real music (Warzone 2100 soundtrack)"
    else:
        from genrescope.testing import synth_music

        y, what = synth_music(minutes * 60, sr, channels=2), "generated music"
    sf.write(str(out), y, sr, format="MP3")
    print(f"input: {minutes:g} min, 44.1 kHz stereo MP3 of {what}, {out.stat().st_size / 1e6:.1f} MB")
    return out


def make_folder(n: int, out: Path) -> tuple[Path, str]:
    """``n`` files of 30 s: real GTZAN tracks (links) when present, else generated WAVs."""
    out.mkdir()
    real = sorted((SHARED / "gtzan" / "audio").glob("*/*.opus"))[:n]
    if len(real) == n:
        for i, f in enumerate(real):
            (out / f"{i:03d}{f.suffix}").symlink_to(f)
        return out, f"{n} real GTZAN tracks of 30 s (Opus, 24 kHz mono)"
    import soundfile as sf

    from genrescope.testing import synth_music

    for i in range(n):
        sf.write(str(out / f"{i:03d}.wav"), synth_music(30.0, 22050, seed=i), 22050)
    return out, f"{n} generated WAVs of 30 s"


def _pin_one_core():
    os.sched_setaffinity(0, {CORES[0]})


def timed_process(cmd: list[str], *, one_core: bool, env: dict | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, stdout) of one process."""
    import signal
    import threading

    env = {**os.environ, **(ONE_THREAD if one_core else {}), "PYTHONFAULTHANDLER": "1", **(env or {})}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, preexec_fn=_pin_one_core if one_core else None)
        watchdog = threading.Timer(TIMEOUT_S, os.kill, (p.pid, signal.SIGABRT))  # a stuck run prints its stacks
        watchdog.start()
        p.wait()
        watchdog.cancel()
        wall = time.perf_counter() - t0
        out.seek(0), err.seek(0)
        text = err.read().decode()
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(cmd[:6])}... failed: {text[-2000:]}")
        hwm = [line.split()[1] for line in text.splitlines() if line.startswith("VmHWM:")]
        return wall, int(hwm[-1]) / 1024 if hwm else float("nan"), out.read().decode()


#: ``python -m genrescope`` that prints its own peak RSS (VmHWM, this program's memory only: the
#: rusage of a child also counts the parent's pages it was forked with) on stderr at exit
GENRESCOPE = ["-c", "import atexit, runpy, sys; atexit.register(lambda: sys.stderr.write("
              "[ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0])); "
              "sys.argv[0] = 'genrescope'; runpy.run_module('genrescope', run_name='__main__')"]


def predict_cmd(paths: list[str], model: str, backend: tuple[str, str], *, one_core: bool, jobs: int = 1,
                threads: int | None = None) -> list[str]:
    cmd = [sys.executable, *GENRESCOPE, "predict", *paths, "--model", model, "--backend", backend[0],
           "--precision", backend[1], "-j", str(jobs), "--format", "json", "--no-progress"]
    threads = 1 if one_core else threads
    return cmd + (["--threads", str(threads)] if threads else [])


def best_process(cmd: list[str], repeat: int, *, one_core: bool) -> tuple[float, float, str]:
    runs = [timed_process(cmd, one_core=one_core) for _ in range(repeat)]
    return min(r[0] for r in runs), max(r[1] for r in runs), runs[0][2]


def load_only(model: str, backend: tuple[str, str], repeat: int) -> float:
    code = (f"from genrescope.inference.predict import Predictor\n"
            f"Predictor({model!r}, threads=1, backend={backend[0]!r}, precision={backend[1]!r})")
    return min(timed_process([sys.executable, "-c", code], one_core=True)[0] for _ in range(repeat))


GEMM_CODE = r"""
import json, os, sys, time
os.sched_setaffinity(0, {int(sys.argv[1])})
import numpy as np, threadpoolctl
def best(f, k=5):
    f(); t = float("inf")
    for _ in range(k):
        t0 = time.perf_counter(); f(); t = min(t, time.perf_counter() - t0)
    return t
n = 2048
a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
info = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
out = {"sgemm": 2 * n ** 3 / best(lambda: a @ a) / 1e9, "kernel": info[0].get("architecture") if info else None}
if sys.argv[2] == "1":
    try:
        import torch
        torch.set_num_threads(1)
        b = torch.randn(n, n, dtype=torch.bfloat16)
        out["bf16"] = 2 * n ** 3 / best(lambda: b @ b) / 1e9
    except ImportError:
        out["bf16"] = None
print(json.dumps(out))
"""


def core_rates() -> dict:
    """Single-thread GEMM rates on one core, each in its own process (BLAS reads its variables at load)."""
    env_now = {k: os.environ.get(k) for k in BLAS_VARS}
    unset = {k: v for k, v in {**os.environ, **ONE_THREAD}.items() if k not in BLAS_VARS}
    rates = {}
    for label, env, torch_too in (("environment", {**os.environ, **ONE_THREAD}, False), ("unset", unset, True),
                                  ("Haswell", {**unset, "OPENBLAS_CORETYPE": "Haswell"}, False)):
        r = subprocess.run([sys.executable, "-c", GEMM_CODE, str(CORES[0]), "1" if torch_too else "0"],
                           capture_output=True, text=True, env=env, check=True)
        rates[label] = json.loads(r.stdout)
    rates["env_vars"] = env_now
    return rates


def _blas_one_thread() -> None:
    from genrescope.inference.runtimes import numpy_blas_one_thread

    numpy_blas_one_thread()  # as `genrescope predict` does


def fresh(fn, *args):
    """``fn(*args)`` in a fresh process (spawned, numpy's BLAS on one thread as the CLI has it).

    In-process rows each get their own process: a runtime's worker threads made while this
    process was pinned to one core stay on that core (OpenVINO's did, and the later two-core
    rows ran at 0.6x), and one backend's threads must not share the process of another's.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_blas_one_thread) as ex:
        return ex.submit(fn, *args).result()


def in_process(path: Path, model: str, backend: tuple[str, str], repeat: int) -> dict:
    """Stage seconds of one song in this process, pinned to one core, one thread."""
    from genrescope.inference.predict import Predictor

    mask = os.sched_getaffinity(0)
    _pin_one_core()
    try:
        pred = Predictor(model, threads=1, backend=backend[0], precision=backend[1])
        best = None
        for _ in range(repeat):
            t0 = time.perf_counter()
            p = pred.predict(path)
            row = {"total": time.perf_counter() - t0, **p.seconds, "windows": len(p.timeline.probs),
                   "duration": p.duration_s, "precision": p.precision}
            best = row if best is None or row["total"] < best["total"] else best
    finally:
        os.sched_setaffinity(0, mask)
    return best


def two_cores_one_song(path: Path, model: str, backend: tuple[str, str], repeat: int) -> dict | None:
    """Model stage of one song on every core: members side by side (one thread each) vs one after another.

    The members are an ensemble's taggers or a head's backbone taggers; ``threads=None`` runs
    them side by side, ``threads=cores`` one after the other with that many threads each.
    """
    from genrescope.audio.decode import load_audio
    from genrescope.features.spectrogram import compute
    from genrescope.features.windows import slice_windows
    from genrescope.inference.runtimes import load_inference_model

    if len(CORES) < 2:
        return None
    engine = {"backend": backend[0], "precision": backend[1]}
    side = load_inference_model(model, threads=None, **engine)
    seq = load_inference_model(model, threads=len(CORES), **engine)
    cfg = side.feature_config
    windows, _, _ = slice_windows(compute(load_audio(path, sr=cfg.sr), cfg, side.kind), cfg,
                                  win_frames=side.window_frames)
    out = {}
    for label, m in (("side by side", side), ("one after another", seq)):
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            for i in range(len(windows)):
                m.predict_windows(windows[i:i + 1])
            best = min(best, time.perf_counter() - t0)
        out[label] = best
    return out


def model_macs_per_window(model: str) -> tuple[float, list[str]]:
    """Multiply-adds of one window through every ONNX graph of ``model``, and the graphs' names."""
    from genrescope.inference.registry import resolve_model_path

    names = _graph_names(model)
    return sum(sum(_graph_macs(str(resolve_model_path(n)[1])).values()) for n in names), names


def _graph_macs(path: str) -> dict[str, float]:
    """Multiply-adds of every Conv / MatMul / Gemm node of one ONNX graph for one window, by node name.

    The shapes come from running the graph once on a window with every such node's input
    and output exposed (musicnn's padding is computed in the graph, so static shape
    inference cannot see them).
    """
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    from genrescope.inference.onnx_model import INPUT_NAME, OnnxModel

    om, proto = OnnxModel(path), onnx.load(path)
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
    macs = {}
    for n in nodes:
        out = shapes[n.output[0]]
        if n.op_type == "Conv":
            k = np.prod(weights[n.input[1]][1:])
        else:
            a = shapes[n.input[0]]
            k = a[-2] if any(at.name == "transA" and at.i for at in n.attribute) else a[-1]
        macs[n.name] = float(np.prod(out)) * float(k)
    return macs


def _module(node: str) -> str:
    """The model module a node belongs to: '/model/timbral.0/conv/Conv' -> 'timbral.0'."""
    parts = node.strip("/").split("/")
    return parts[1] if len(parts) > 2 else parts[-1]


def layer_profile(model: str, backend: tuple[str, str], windows: np.ndarray) -> list[tuple]:
    """One core, one thread: (graph, layer, ms a window, share of the graph, GFLOP/s or None) per layer.

    OpenVINO: its performance counters (fused layers count under the conv they joined);
    ONNX Runtime: its profiler's node times. Layers are grouped by module (see
    :func:`_module`). A head that reads embedding rows gets rows of zeros (its cost is tiny).
    """
    from genrescope.inference.onnx_model import OnnxModel
    from genrescope.inference.registry import resolve_model_path

    mask = os.sched_getaffinity(0)
    _pin_one_core()
    rows = []
    try:
        for name in _graph_names(model):
            path = str(resolve_model_path(name)[1])
            macs = _graph_macs(path)
            om = OnnxModel(path)
            x = np.zeros((len(windows), om.n_bins), np.float32) if om.input_kind == "table" else windows
            times: dict[str, float] = {}
            if backend[0] == "openvino":
                import openvino as ov

                core = ov.Core()
                want = "bf16" if backend[1] in ("auto", "bf16") and "BF16" in core.get_property(
                    "CPU", "OPTIMIZATION_CAPABILITIES") else "f32"
                cm = core.compile_model(core.read_model(path), "CPU", {
                    "INFERENCE_PRECISION_HINT": want, "PERF_COUNT": True, "INFERENCE_NUM_THREADS": 1,
                    "NUM_STREAMS": 1, "ENABLE_CPU_PINNING": False})
                req = cm.create_infer_request()
                req.infer({0: x[:1]})
                for i in range(len(x)):
                    req.infer({0: x[i:i + 1]})
                    for p in req.profiling_info:
                        times[p.node_name] = times.get(p.node_name, 0.0) + p.real_time.total_seconds()
            else:
                import onnxruntime as ort

                opts = ort.SessionOptions()
                opts.intra_op_num_threads, opts.enable_profiling = 1, True
                with tempfile.TemporaryDirectory() as d:
                    opts.profile_file_prefix = os.path.join(d, "p")
                    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
                    for i in range(len(x)):
                        sess.run(None, {sess.get_inputs()[0].name: x[i:i + 1]})
                    events = json.loads(Path(sess.end_profiling()).read_text())
                for e in events:
                    if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
                        node = e["name"][:-len("_kernel_time")]
                        times[node] = times.get(node, 0.0) + e["dur"] / 1e6
            spent: dict[str, float] = {}
            for node, t in times.items():
                spent[_module(node)] = spent.get(_module(node), 0.0) + t
            work: dict[str, float] = {}
            for node, m in macs.items():
                work[_module(node)] = work.get(_module(node), 0.0) + m
            total = sum(spent.values()) or 1.0
            for module, t in sorted(spent.items(), key=lambda kv: -kv[1]):
                per = t / len(windows)
                rate = 2 * work[module] / per / 1e9 if work.get(module) and per else None
                rows.append((name, module, per * 1e3, t / total, rate))
    finally:
        os.sched_setaffinity(0, mask)
    return rows


def song_windows(path: Path, model: str, n: int = 32) -> np.ndarray:
    """``n`` windows of the song, evenly spread, as the first graph of ``model`` takes them."""
    from genrescope.audio.decode import load_audio
    from genrescope.features.spectrogram import compute
    from genrescope.features.windows import slice_windows
    from genrescope.inference.onnx_model import OnnxModel
    from genrescope.inference.registry import resolve_model_path

    om = OnnxModel(resolve_model_path(_graph_names(model)[0])[1])
    cfg = om.feature_config
    w = slice_windows(compute(load_audio(path, sr=cfg.sr), cfg, om.input_kind), cfg, win_frames=om.window_frames)[0]
    return np.ascontiguousarray(w[np.linspace(0, len(w) - 1, min(n, len(w))).astype(int)], dtype=np.float32)


def _graph_names(model: str) -> list[str]:
    """The ONNX graphs one window goes through: an ensemble's members, a head's backbone, the head."""
    from genrescope.inference.onnx_model import OnnxModel
    from genrescope.inference.registry import DEFAULT_MODEL, ENSEMBLES, resolve_model_path

    def graphs(name: str) -> list[str]:
        if name in ENSEMBLES:
            return [g for m in ENSEMBLES[name] for g in graphs(m)]
        backbone = OnnxModel(resolve_model_path(name)[1]).provenance.get("backbone")
        return (graphs(backbone) if backbone else []) + [name]

    return graphs(DEFAULT_MODEL if model == "default" else model)


def report(args, dur: float, rows: dict, loads: dict, stages: dict, rates: dict, two: dict, folder: dict,
           layers: dict) -> None:
    from genrescope.inference.registry import DEFAULT_MODEL

    shown = f"{args.model} (= {DEFAULT_MODEL})" if args.model == "default" else args.model
    print(f"\nmodel {shown}; best of {args.repeat}; {len(CORES)} cores; load average "
          f"{os.getloadavg()[0]:.1f} at the end (other work on the machine slows every row alike)")
    env = ", ".join(f"{k}={v}" for k, v in rates["env_vars"].items() if v) or "neither variable set"
    print(f"\ncore rates, one thread ({env}):")
    for label in ("environment", "unset", "Haswell"):
        r = rates[label]
        print(f"  numpy SGEMM, OpenBLAS variables {label:12} {r['sgemm']:6.0f} GFLOP/s  (kernel {r['kernel']})")
    bf16 = rates["unset"].get("bf16")
    print(f"  torch bfloat16 GEMM                         {bf16:6.0f} GFLOP/s" if bf16 else "  torch: not installed")
    print(f"\n{'whole `genrescope predict` process':44}{'seconds':>8}{'x real time':>13}{'vs today':>13}"
          f"{'peak RSS':>10}")
    for (backend, cores), (wall, rss, prec) in rows.items():
        if backend == TODAY and cores == "one core":
            continue  # the same run as onnxruntime on one core
        base = rows[(TODAY, cores)][0]
        print(f"  {backend + ' ' + prec + ', ' + cores:42}{wall:8.2f}{dur / wall:13.0f}{base / wall:12.2f}x"
              f"{rss:8.0f} MB")
    for backend, t in loads.items():
        print(f"  start-up + import + model load, {backend:11}{t:8.2f} s")
    macs, graphs = model_macs_per_window(args.model)
    print(f"\nin-process, one core, one thread ({2 * macs / 1e9:.2f} GFLOP a window through {' + '.join(graphs)}):")
    for backend, s in stages.items():
        flop = 2 * macs * s["windows"]
        rate = flop / s["model"] / 1e9
        print(f"  {backend} {s['precision']}: decode + features {s['decode+features']:.2f} s "
              f"({dur / s['decode+features']:.0f}x), model {s['model']:.2f} s for {s['windows']} windows "
              f"= {rate:.0f} GFLOP/s, {rate / rates['unset']['sgemm']:.2f} of SGEMM"
              + (f", {rate / bf16:.2f} of the bfloat16 GEMM" if bf16 else ""))
    if bf16:
        song = 2 * macs * next(iter(stages.values()))["windows"]
        decode = min(st["decode+features"] for st in stages.values())
        one, every = song / (bf16 * 1e9), song / (bf16 * 1e9 * len(CORES))
        print(f"  ceiling: the song is {song / 1e9:.0f} GFLOP; at this core's bfloat16 GEMM rate the model stage "
              f"alone takes {one:.2f} s on one core ({dur / (one + decode):.0f}x real time with decode + features, "
              f"no start-up) and {every:.2f} s on {len(CORES)} cores "
              f"({dur / (every + decode / len(CORES)):.0f}x), at 100 % GEMM efficiency")
    for backend, rows_ in layers.items():
        print(f"\nper layer, {backend}, one core, one thread, {args.profile_windows} windows of the song "
              "(ms a window, share of the graph, GFLOP/s of its convs / dense layers):")
        for graph, module, ms, share, rate in rows_:
            if share >= 0.01:
                print(f"  {graph:12} {module:14} {ms:7.2f} ms {100 * share:5.1f} %" + (f" {rate:6.0f} GFLOP/s" if rate
                                                                                          else ""))
    for backend, t in (two or {}).items():
        if t:
            print(f"one song, model stage on {len(CORES)} cores, {backend}: members side by side "
                  f"{t['side by side']:.2f} s, one after another with {len(CORES)} threads each "
                  f"{t['one after another']:.2f} s ({t['one after another'] / t['side by side']:.2f}x)")
    if folder:
        print(f"\n{folder['what']}, {folder['backend']}, whole process:")
        for jobs in (1, 2):
            print(f"  predict DIR -j {jobs}: {folder[jobs]:.1f} s, {args.files / folder[jobs]:.2f} files/s")
        print(f"  -j 2 / -j 1: {folder[1] / folder[2]:.2f}x")
    targets(dur, rows, loads)


def targets(dur: float, rows: dict, loads: dict) -> None:
    fast = min((k for k in rows if k[1] == "all cores" and k[0] != TODAY), key=lambda k: rows[k][0])[0]

    def line(what: str, value: float, goal: float, unit: str, higher: bool = True) -> None:
        ok = value >= goal if higher else value < goal
        print(f"  {what:52} {value:8.2f}{unit} (target {'>=' if higher else '<'} {goal:g}{unit}): "
              f"{'met' if ok else 'NOT met'}")

    print(f"\ntargets (fastest backend: {fast}):")
    line("whole process, all cores, x real time", dur / rows[(fast, "all cores")][0], 200, "x")
    line("whole process, one core, x real time", dur / rows[(fast, "one core")][0], 120, "x")
    for cores in ("all cores", "one core"):
        line(f"vs today's ORT float32 path, {cores}", rows[(TODAY, cores)][0] / rows[(fast, cores)][0], 1.6, "x")
    line("start-up + import + load, s", loads[fast], 0.5, " s", higher=False)
    line("peak RSS, MB", max(r[1] for k, r in rows.items() if k[0] == fast), 500, " MB", higher=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--audio", default=None, help="an audio file (default: a 4-minute MP3 made here)")
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--model", default="default")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile-windows", type=int, default=32, help="windows of the per-layer profile (0: skip it)")
    ap.add_argument("--files", type=int, default=100, help="files of 30 s for the folder run (0: skip it)")
    args = ap.parse_args()
    from genrescope.inference.backends import available_backends

    backends = [ORT] + [("openvino", "auto")] * ("openvino" in available_backends())
    rates = core_rates()
    with tempfile.TemporaryDirectory() as d:
        path = Path(args.audio) if args.audio else make_song(args.minutes, Path(d) / "song.mp3")
        rows, stages, two = {}, {}, {}
        for b in backends:
            stages[b[0]] = fresh(in_process, path, args.model, b, args.repeat)
            two[b[0]] = fresh(two_cores_one_song, path, args.model, b, args.repeat)
            for cores in ("one core", "all cores"):
                one = cores == "one core"
                wall, rss, out = best_process(predict_cmd([str(path)], args.model, b, one_core=one), args.repeat,
                                              one_core=one)
                rows[(b[0], cores)] = (wall, rss, json.loads(out)[0]["precision"])
        # today's path before this bench's backends: ONNX Runtime, ensemble members one after another
        # with every core as intra-op threads (what --threads N still does)
        cmd = predict_cmd([str(path)], args.model, ORT, one_core=False, threads=len(CORES))
        wall, rss, out = best_process(cmd, args.repeat, one_core=False)
        rows[(TODAY, "all cores")] = (wall, rss, json.loads(out)[0]["precision"])
        rows[(TODAY, "one core")] = rows[(ORT[0], "one core")]
        loads = {b[0]: load_only(args.model, b, args.repeat) for b in backends}
        folder = {}
        if args.files:
            folder_dir, what = make_folder(args.files, Path(d) / "folder")
            fast = min(backends, key=lambda b: rows[(b[0], "all cores")][0])
            folder = {"what": what, "backend": fast[0]}
            for jobs in (1, 2):
                cmd = predict_cmd([str(folder_dir)], args.model, fast, one_core=False, jobs=jobs)
                folder[jobs] = timed_process(cmd, one_core=False)[0]
        layers = {}
        if args.profile_windows:
            w = song_windows(path, args.model, args.profile_windows)
            layers = {f"{b[0]} {stages[b[0]]['precision']}": fresh(layer_profile, args.model, b, w) for b in backends}
        report(args, stages[ORT[0]]["duration"], rows, loads, stages, rates, two, folder, layers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
