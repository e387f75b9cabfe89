"""The measurements behind bench/predict.py: core rates, processes, stages, layers, parity.

Each function measures one thing and returns numbers; bench/predict.py runs them in one run
and prints the ratios. Nothing here is timed against a fixed number.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")}
BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CORES = sorted(os.sched_getaffinity(0))
TIMEOUT_S = 600  # one process; a run past this prints its threads' stacks and exits

#: ``python -m genrescope`` that prints its own peak RSS (VmHWM) on stderr at exit, and every thread's
#: stack if it runs past TIMEOUT_S (then exits: the bench names the command and prints them)
GENRESCOPE = ["-c", "import atexit, faulthandler, runpy, sys; faulthandler.dump_traceback_later("
              f"{TIMEOUT_S}, exit=True); atexit.register(lambda: sys.stderr.write("
              "[ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0])); "
              "sys.argv[0] = 'genrescope'; runpy.run_module('genrescope', run_name='__main__')"]


# ---------------------------------------------------------------- inputs
def make_song(minutes: float, out: Path, offset_s: float = 0.0) -> Path:
    """A 44.1 kHz stereo MP3 of real music when ../shared/data is present (starting ``offset_s``
    into the concatenated soundtrack), else generated."""
    import soundfile as sf

    from genrescope.audio.decode import load_audio

    sr = 44100
    need, skip, parts, have = int(minutes * 60 * sr), int(offset_s * sr), [], 0
    for f in sorted((SHARED / "free-music" / "warzone2100").glob("*.opus")) + \
            sorted((SHARED / "free-music" / "wesnoth").glob("*.ogg")):
        if f.name != "silence.ogg" and have < need + skip:
            parts.append(load_audio(f, sr=sr, mono=False))
            have += len(parts[-1])
    if have >= need + skip:
        y = np.concatenate(parts)[skip:skip + need]
    else:
        from genrescope.testing import synth_music

        y = synth_music(minutes * 60, sr, channels=2, seed=int(offset_s))
    sf.write(str(out), y, sr, format="MP3")
    return out


def song_kind() -> str:
    return "real music (Warzone 2100 soundtrack)" if (SHARED / "free-music").is_dir() else "generated music"


def make_folder(n: int, out: Path) -> tuple[Path, str]:
    """``n`` files of 30 s in genre folders: real GTZAN tracks (links) when present, else generated WAVs."""
    real = sorted((SHARED / "gtzan" / "audio").glob("*/*.opus"))[::3][:n]
    if len(real) == n:
        for i, f in enumerate(real):
            (out / f.parent.name).mkdir(parents=True, exist_ok=True)
            (out / f.parent.name / f"{i:03d}{f.suffix}").symlink_to(f)
        return out, f"{n} real GTZAN tracks of 30 s (Opus, 24 kHz mono)"
    import soundfile as sf

    from genrescope.testing import synth_music

    for i in range(n):
        (out / f"g{i % 2}").mkdir(parents=True, exist_ok=True)
        sf.write(str(out / f"g{i % 2}" / f"{i:03d}.wav"), synth_music(30.0, 22050, seed=i), 22050)
    return out, f"{n} generated WAVs of 30 s"


# ---------------------------------------------------------------- processes
def _pin_one_core():
    os.sched_setaffinity(0, {CORES[0]})


def timed_process(cmd: list[str], *, one_core: bool, env: dict | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, stdout) of one process (pinned to one core, one thread, if asked)."""
    env = {**os.environ, **(ONE_THREAD if one_core else {}), "PYTHONFAULTHANDLER": "1", **(env or {})}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, preexec_fn=_pin_one_core if one_core else None)
        watchdog = threading.Timer(TIMEOUT_S + 60, os.kill, (p.pid, signal.SIGKILL))  # past its own dump
        watchdog.start()
        p.wait()
        watchdog.cancel()
        wall = time.perf_counter() - t0
        out.seek(0), err.seek(0)
        text = err.read().decode()
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(cmd[:8])}... failed: {text[-2000:]}")
        hwm = [line.split()[1] for line in text.splitlines() if line.startswith("VmHWM:")]
        return wall, int(hwm[-1]) / 1024 if hwm else float("nan"), out.read().decode()


def genrescope(*args: str) -> list[str]:
    return [sys.executable, *GENRESCOPE, *args]


def best_process(cmd: list[str], repeat: int, *, one_core: bool) -> tuple[float, float, str]:
    runs = [timed_process(cmd, one_core=one_core) for _ in range(repeat)]
    return min(r[0] for r in runs), max(r[1] for r in runs), runs[0][2]


STARTUP_CODE = r"""
import sys, time
t0 = time.perf_counter()
from genrescope.commands import main  # what the console script imports
import genrescope.commands.predict_cmd
from genrescope.inference.predict import Predictor
t1 = time.perf_counter()
p = Predictor(sys.argv[1], backend=sys.argv[2])
t2 = time.perf_counter()
print(t1 - t0, t2 - t1, p.model.backend, len(sys.modules))
"""


def startup(model: str, backend: str, repeat: int) -> dict:
    """Start-up + import + model load of a process that loads the model and exits, best of ``repeat``,
    with where the time goes: the interpreter alone, genrescope's imports, the model load."""
    bare = min(timed_process([sys.executable, "-c", "pass"], one_core=True)[0] for _ in range(repeat))
    runs = []
    for _ in range(repeat):
        wall, _, out = timed_process([sys.executable, "-c", STARTUP_CODE, model, backend], one_core=True)
        imp, load, ran, mods = out.split()
        runs.append({"total": wall, "imports": float(imp), "load": float(load), "backend": ran, "modules": int(mods)})
    best = min(runs, key=lambda r: r["total"])
    return {**best, "interpreter": bare}


# ---------------------------------------------------------------- core rates
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
    for label, env, torch_too in (("environment", {**os.environ, **ONE_THREAD}, False), ("unset", unset, True)):
        r = subprocess.run([sys.executable, "-c", GEMM_CODE, str(CORES[0]), "1" if torch_too else "0"],
                           capture_output=True, text=True, env=env, check=True)
        rates[label] = json.loads(r.stdout)
    rates["env_vars"] = env_now
    return rates


LOAD_CODE = r"""
import os, sys, time
os.sched_setaffinity(0, {int(sys.argv[1])})
import numpy as np
if sys.argv[2] == "gemm":
    import torch
    torch.set_num_threads(1)
    n = 2048
    b = torch.randn(n, n, dtype=torch.bfloat16)
    work, step = 2 * n ** 3, lambda: b @ b
else:  # copy 32 MB into another 32 MB: memory bandwidth, read + write
    a = np.ones(8 << 20, np.float32)
    c = np.empty_like(a)
    work, step = 2 * a.nbytes, lambda: np.copyto(c, a)
step()
t0, k = time.perf_counter(), 0
while time.perf_counter() - t0 < 2.0:
    step()
    k += 1
print(work * k / (time.perf_counter() - t0) / 1e9)
"""


def two_core_scaling() -> dict:
    """How much more two cores do than one, for compute (torch bf16 GEMM) and for memory traffic
    (a 32 MB copy): each alone on one core, then one on each core at the same time (2 s each)."""
    out = {}
    if len(CORES) < 2:
        return out
    for what in ("gemm", "copy"):
        def run(cores):
            procs = [subprocess.Popen([sys.executable, "-c", LOAD_CODE, str(c), what], stdout=subprocess.PIPE,
                                      text=True, env={**os.environ, **ONE_THREAD}) for c in cores]
            return [float(p.communicate()[0]) for p in procs]
        try:
            alone, both = run(CORES[:1])[0], sum(run(CORES[:2]))
        except ValueError:  # torch missing: no GEMM rate
            continue
        out[what] = (alone, both)
    return out


# ---------------------------------------------------------------- in-process stages
def _blas_one_thread() -> None:
    from genrescope.inference.runtimes import numpy_blas_one_thread

    numpy_blas_one_thread()  # as `genrescope predict` does


def fresh(fn, *args):
    """``fn(*args)`` in a fresh spawned process (a runtime's threads made while pinned stay pinned,
    and one backend's threads must not share the process of another's)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_blas_one_thread) as ex:
        return ex.submit(fn, *args).result()


def in_process(path: Path, model: str, backend: str, repeat: int, precision: str = "auto") -> dict:
    """Stage seconds of one song in this process, pinned to one core, one thread (best of ``repeat``)."""
    from genrescope.inference.predict import Predictor

    mask = os.sched_getaffinity(0)
    _pin_one_core()
    try:
        pred = Predictor(model, threads=1, backend=backend, precision=precision)
        best = None
        for _ in range(repeat):
            t0 = time.perf_counter()
            p = pred.predict(path)
            row = {"total": time.perf_counter() - t0, **p.seconds, "windows": len(p.timeline.probs),
                   "duration": p.duration_s, "precision": p.precision, "backend": p.backend}
            best = row if best is None or row["total"] < best["total"] else best
    finally:
        os.sched_setaffinity(0, mask)
    return best


def two_cores_one_song(path: Path, model: str, backend: str, repeat: int) -> dict | None:
    """Model stage of one song on every core: one-thread calls side by side (the default) against
    one call at a time on every core's threads (``--threads N``)."""
    from genrescope.audio.decode import load_audio
    from genrescope.features.spectrogram import compute
    from genrescope.features.windows import slice_windows
    from genrescope.inference.inference_model import predict_batches
    from genrescope.inference.runtimes import load_inference_model

    if len(CORES) < 2:
        return None
    side = load_inference_model(model, threads=None, backend=backend)
    intra = load_inference_model(model, threads=len(CORES), backend=backend)
    cfg = side.feature_config
    windows = slice_windows(compute(load_audio(path, sr=cfg.sr), cfg, side.kind), cfg, win_frames=side.window_frames)[0]
    batches = [windows[i:i + 1] for i in range(len(windows))]
    out = {}
    for label, m in (("side by side", side), ("one call, every core's threads", intra)):
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            predict_batches(m, batches)
            best = min(best, time.perf_counter() - t0)
        out[label] = best
    return out
