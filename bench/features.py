"""Throughput of decode + resample + log-mel, per core, against librosa in the same run.

    python bench/features.py [--repeat 5] [--files 20] [--no-scaling]

Measures seconds of audio per second of wall time (x real time) on one core of:

* genrescope: ``audio.load_audio(path, sr=22050)`` + ``features.log_mel`` with the
  default FeatureConfig, split into decode, resample and features;
* the baseline: ``librosa.load(path, sr=22050)`` + ``librosa.feature.melspectrogram``
  + ``librosa.power_to_db`` with the same parameters,

on (a) a 44.1 kHz stereo MP3 of about 60 s and (b) 22050 Hz mono WAV (GTZAN excerpts).
Real music from ../shared/data when present, else generated audio. The timings run in a
subprocess pinned to one core with BLAS/OpenMP limited to one thread; each figure is the
best of --repeat runs (the machine may be shared, and the minimum is the least noisy).
Then ``genrescope features`` (the cache path) runs on a folder of --files files with
-j 1 and -j 2, and the speed-up is reported.

Targets: >= 200x real time for the MP3, >= 1000x for the WAV, never slower than librosa.
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

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SR = 22050
TARGETS = {"mp3": 200.0, "wav": 1000.0}
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


# ---------------------------------------------------------------- inputs
def synth(seconds: float, sr: int, channels: int, seed: int):
    """Chords on a beat plus noise: the test suite's stand-in for music."""
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 110.0 * 2 ** (seed % 12 / 12)
    y = sum(np.sin(2 * np.pi * f0 * r * t + rng.uniform(0, 6.3)) for r in (1, 1.25, 1.5, 2, 3))
    y = 0.1 * y * np.exp(-5.0 * (t % 0.5)) + 0.01 * rng.standard_normal(len(t))
    y = y.astype(np.float32)
    return np.stack([y, np.roll(y, 37)], axis=1) if channels == 2 else y


def make_inputs(tmp: Path, n_files: int) -> dict:
    """The MP3, the WAV list and the folder for the scaling run; says where they came from."""
    import numpy as np
    import soundfile as sf
    import soxr

    ogg = sorted((SHARED / "free-music" / "librosa-examples").glob("*/*.ogg"))
    gtzan = sorted((SHARED / "gtzan" / "clips").glob("*/*.wav"))
    if ogg:
        src = next((p for p in ogg if "Vibe_Ace" in p.name), ogg[0])
        y, sr = sf.read(src, dtype="float32", always_2d=True)
        y = soxr.resample(y, sr, 44100) if sr != 44100 else y
        y = np.repeat(y, 2, axis=1) if y.shape[1] == 1 else y[:, :2]
        y = np.tile(y, (int(np.ceil(60 * 44100 / len(y))), 1))[: 60 * 44100]
        mp3_from = f"{src.parent.name}/{src.name[:24]}..."
    else:
        y, mp3_from = synth(60, 44100, 2, 0), "generated"
    mp3 = tmp / "stereo44k.mp3"
    sf.write(mp3, y, 44100, format="MP3")
    if gtzan:
        wavs, wav_from = gtzan[:6], "GTZAN clips"
    else:
        wavs, wav_from = [], "generated"
        for i in range(6):
            wavs.append(tmp / f"mono22k_{i}.wav")
            sf.write(wavs[-1], synth(30, SR, 1, i), SR, subtype="PCM_16")
    folder = tmp / "folder"
    folder.mkdir()
    pool = gtzan + sorted((SHARED / "gtzan" / "classical-15s").glob("*.flac"))
    for i in range(n_files):
        if i < len(pool):
            (folder / pool[i].name).symlink_to(pool[i])
        else:
            sf.write(folder / f"gen_{i}.wav", synth(30, SR, 1, 100 + i), SR, subtype="PCM_16")
    return {"mp3": [str(mp3)], "wav": [str(w) for w in wavs], "mp3_from": mp3_from, "wav_from": wav_from,
            "folder": str(folder), "folder_from": "GTZAN clips + classical-15s" if pool else "generated"}


# ---------------------------------------------------------------- one-core timings (subprocess)
def best(fn, repeat: int) -> float:
    fn()  # warm-up: imports, filterbank caches, librosa's numba and resampler set-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure(files: list[str], repeat: int) -> dict:
    """Wall seconds of each stage over ``files``, best of ``repeat``; runs inside the pinned child."""
    import librosa
    import numpy as np
    import soundfile as sf

    from genrescope.audio import load_audio
    from genrescope.config import FeatureConfig
    from genrescope.features import log_mel

    cfg = FeatureConfig(sr=SR)
    ys = [load_audio(f, sr=SR) for f in files]
    lib_kw = dict(sr=SR, n_fft=cfg.n_fft, hop_length=cfg.hop_length, n_mels=cfg.n_mels, fmin=cfg.fmin,
                  fmax=cfg.mel_fmax, htk=cfg.mel_htk, norm=cfg.mel_norm, power=cfg.power, center=cfg.center,
                  pad_mode=cfg.pad_mode)

    ours, theirs = log_mel(ys[0], cfg), librosa_log_mel(files[0], lib_kw, cfg)
    n = min(ours.shape[1], theirs.shape[1])
    out = {
        "audio_s": sum(sf.info(f).duration for f in files),
        "decode": best(lambda: [load_audio(f, sr=None) for f in files], repeat),
        "load": best(lambda: [load_audio(f, sr=SR) for f in files], repeat),
        "features": best(lambda: [log_mel(y, cfg) for y in ys], repeat),
        "total": best(lambda: [log_mel(load_audio(f, sr=SR), cfg) for f in files], repeat),
        "librosa_load": best(lambda: [librosa.load(f, sr=SR, mono=True) for f in files], repeat),
        "librosa_total": best(lambda: [librosa_log_mel(f, lib_kw, cfg) for f in files], repeat),
        "max_abs_db_diff": float(np.abs(ours[:, :n] - theirs[:, :n]).max()),
    }
    out["resample"] = max(out["load"] - out["decode"], 0.0)
    return out


def librosa_log_mel(f: str, lib_kw: dict, cfg):
    """The baseline: what a librosa user writes."""
    import librosa

    y, _ = librosa.load(f, sr=SR, mono=True)
    return librosa.power_to_db(librosa.feature.melspectrogram(y=y, **lib_kw), ref=1.0, amin=cfg.log_floor,
                               top_db=None)


def child_env(one_thread: bool) -> dict:
    env = dict(os.environ)
    if one_thread:  # read by OpenBLAS / OpenMP / numba when they load, so set before the child starts
        env.update({v: "1" for v in THREAD_VARS})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    return env


def run_pinned(inputs: dict, repeat: int, core: int) -> dict:
    arg = json.dumps({"mp3": inputs["mp3"], "wav": inputs["wav"], "repeat": repeat, "core": core})
    proc = subprocess.run([sys.executable, __file__, "--child", arg], env=child_env(True), capture_output=True,
                          text=True)
    if proc.returncode:
        sys.exit(f"timing subprocess failed:\n{proc.stderr}")
    return json.loads(proc.stdout.splitlines()[-1])


def child_main(arg: str) -> None:
    spec = json.loads(arg)
    os.sched_setaffinity(0, {spec["core"]})
    res = {k: measure(spec[k], spec["repeat"]) for k in ("mp3", "wav")}
    print(json.dumps(res))


# ---------------------------------------------------------------- scaling of the cache path
def run_cli(folder: str, jobs: int, cache: Path) -> tuple[float, str]:
    cmd = [sys.executable, "-m", "genrescope", "features", folder, "--set", "log-mel", "--cache", str(cache),
           "-j", str(jobs), "--no-progress"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=child_env(False), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout}{proc.stderr}")
    return wall, proc.stdout


def scaling(folder: str, tmp: Path, rounds: int) -> list[tuple[int, float, str]]:
    """Best wall time of ``genrescope features -j N`` on an empty cache, N = 1 and 2, interleaved."""
    best_of: dict[int, tuple[float, str]] = {}
    for r in range(rounds):
        for jobs in (1, 2):
            wall, out = run_cli(folder, jobs, tmp / f"cache-j{jobs}-{r}")
            if jobs not in best_of or wall < best_of[jobs][0]:
                best_of[jobs] = (wall, out)
    return [(j, w, o) for j, (w, o) in sorted(best_of.items())]


# ---------------------------------------------------------------- report
def xrt(audio_s: float, t: float) -> str:
    return f"{audio_s / t:7.0f}x" if t > 0 else "      -"


def report(res: dict, inputs: dict, args, core: int) -> None:
    import librosa
    import numpy as np
    import soundfile as sf
    import soxr

    print(f"decode + resample + log-mel, one core (cpu {core}, 1 BLAS thread), best of {args.repeat}")
    print(f"numpy {np.__version__}, soundfile {sf.__version__} (libsndfile {sf.__libsndfile_version__}), "
          f"soxr {soxr.__version__}, librosa {librosa.__version__}; {os.cpu_count()} cpus on this machine\n")
    labels = {"mp3": f"44.1k stereo mp3 ({inputs['mp3_from']})",
              "wav": f"22.05k mono wav ({len(inputs['wav'])} x {inputs['wav_from']})"}
    print(f"{'input':48s} {'audio':>7s} {'genrescope':>10s} {'librosa':>8s} {'ratio':>6s} {'target':>7s}  met?")
    verdicts = []
    for k in ("mp3", "wav"):
        r = res[k]
        a = r["audio_s"]
        ours, theirs = a / r["total"], a / r["librosa_total"]
        ok_target, ok_base = ours >= TARGETS[k], ours >= theirs
        verdicts += [ok_target, ok_base]
        print(f"{labels[k]:48s} {a:6.0f}s {ours:9.0f}x {theirs:7.0f}x {ours / theirs:6.2f} {TARGETS[k]:6.0f}x  "
              f"{'yes' if ok_target else 'NO'} (target), {'yes' if ok_base else 'NO'} (>= librosa)")
    print("\nper stage, x real time (ms for the whole input)")
    print(f"{'input':8s} {'decode':>15s} {'resample':>15s} {'log-mel':>15s} {'total':>15s} "
          f"{'librosa.load':>15s} {'librosa total':>15s}  max |dB diff|")
    for k in ("mp3", "wav"):
        r, a = res[k], res[k]["audio_s"]
        cells = [f"{xrt(a, r[s])} ({1e3 * r[s]:5.0f})" for s in
                 ("decode", "resample", "features", "total", "librosa_load", "librosa_total")]
        print(f"{k:8s} " + " ".join(f"{c:>15s}" for c in cells) + f"  {r['max_abs_db_diff']:.2e}")
    print("decode = load_audio(sr=None) (includes the stereo to mono mix); resample = load_audio(sr=22050) "
          "- decode")
    print(f"\nall targets met: {'yes' if all(verdicts) else 'NO'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per figure; the best counts")
    ap.add_argument("--files", type=int, default=20, help="files in the -j 1 / -j 2 scaling run")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of the scaling run (best counts)")
    ap.add_argument("--core", type=int, default=None, help="cpu to pin the timings to (default: the last)")
    ap.add_argument("--no-scaling", action="store_true", help="skip the -j 1 / -j 2 run")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child_main(args.child)
    core = args.core if args.core is not None else max(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="genrescope-bench-") as d:
        tmp = Path(d)
        inputs = make_inputs(tmp, args.files)
        res = run_pinned(inputs, args.repeat, core)
        report(res, inputs, args, core)
        if args.no_scaling:
            return
        rows = scaling(inputs["folder"], tmp, args.rounds)
        print(f"\n`genrescope features DIR -j N` on an empty cache, {args.files} files "
              f"({inputs['folder_from']}), wall time of the whole command, best of {args.rounds}")
        for jobs, wall, out in rows:
            line = next((s for s in out.splitlines() if s.startswith("audio:")), "").removeprefix("audio:").strip()
            print(f"  -j {jobs}: {wall:6.2f} s   ({line})")
        print(f"  speed-up -j 2 / -j 1: {rows[0][1] / rows[1][1]:.2f}x on {len(os.sched_getaffinity(0))} cores "
              f"available to this process")


if __name__ == "__main__":
    main()
