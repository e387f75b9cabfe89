"""`genrescope tag` speed, and how often --windows N agrees with the full analysis.

    python bench/tag.py speed [--model default] [--n30 8] [--n240 2] [-j 2] [--no-ray]
    python bench/tag.py windows [--model default] [--per-genre 4] [-j 2]

``speed`` generates a library of 30 s and of 4-minute tracks (44.1 kHz stereo mp3, like a
ripped collection) and tags a fresh copy of each with ``--write`` three ways, measured in
the same run: the one-process loop (``-j 1``, the baseline), the pipelined local engine
(``-j N`` worker processes, tag writes in the parent) and Ray on a local cluster of N
workers (its start-up measured apart). It prints tracks per minute and the speed-up over
the one-process loop.

``windows`` runs on the real music in ../shared/data: for each track, the full analysis
and ``--windows N`` for N = 4, 8, 16, and prints how often the top genre agrees, for the
30 s GTZAN excerpts (``--per-genre`` per genre) and for the long free-music tracks apart,
with the time each takes relative to the full analysis.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
WINDOWS = (4, 8, 16)


def song(seconds: float, sr: int, seed: int) -> np.ndarray:
    """A stereo chord progression with beats and noise: (n, 2) float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 110.0 * 2 ** (rng.integers(0, 12) / 12) * 2 ** (np.floor(t / 2.0) % 4 / 12)
    chord = sum(np.sin(2 * np.pi * f0 * r * t) for r in (1.0, 1.25, 1.5, 2.0))
    env = np.exp(-5.0 * (t % (60.0 / rng.uniform(70, 160))))
    y = 0.12 * chord * env + 0.02 * rng.standard_normal(len(t))
    return np.stack([y, 0.8 * y], axis=1).astype(np.float32)


def make_library(root: Path, n: int, seconds: float) -> Path:
    import soundfile as sf

    for i in range(n):
        p = root / f"artist{i % 3}" / f"track{i:03d}.mp3"
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(p), song(seconds, 44100, seed=i), 44100, format="MP3")
    return root


def timed_tag(lib: Path, work: Path, name: str, model: str, engine: str, jobs: int) -> float:
    from genrescope.library.tag_run import tag_library
    from genrescope.library.core import TagOptions

    copy = work / name
    shutil.copytree(lib, copy)
    t0 = time.perf_counter()
    recs = tag_library([str(copy)], TagOptions(model=model, write=True), report_path=str(work / f"{name}.csv"),
                       engine=engine, jobs=jobs)
    seconds = time.perf_counter() - t0
    bad = [r for r in recs if r["status"] != "written"]
    if bad:
        raise SystemExit(f"{name}: {len(bad)} files not written, e.g. {bad[0]}")
    return seconds


def run_speed(args) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-tag-"))
    ray_start = None
    if not args.no_ray:
        try:
            import ray
        except ImportError:
            print("ray is not installed (pip install 'genrescope[ray]'): no Ray rows", file=sys.stderr)
            args.no_ray = True
        else:
            t0 = time.perf_counter()
            ray.init(num_cpus=args.jobs, include_dashboard=False, log_to_driver=False)
            ray_start = time.perf_counter() - t0
    rows = []
    try:
        for n, seconds in ((args.n30, 30.0), (args.n240, 240.0)):
            lib = make_library(work / f"lib{int(seconds)}", n, seconds)
            modes = [("one process (-j 1)", "local", 1), (f"pipelined (-j {args.jobs})", "local", args.jobs)]
            if not args.no_ray:
                modes.append((f"Ray local ({args.jobs} workers)", "ray", args.jobs))
            base = None
            for label, engine, jobs in modes:
                s = timed_tag(lib, work, f"{int(seconds)}-{engine}-{jobs}", args.model, engine, jobs)
                base = base or s
                rows.append((f"{int(seconds)} s", label, n, s, n / s * 60, base / s))
                print(f"  {rows[-1][0]} tracks, {label}: {s:.1f} s", file=sys.stderr)
    finally:
        if ray_start is not None:
            import ray

            ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nmodel {args.model}, {os.cpu_count()} cores, tag --write on 44.1 kHz stereo mp3\n")
    print("| tracks | engine | files | seconds | tracks per minute | speed-up |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:.1f} | {r[4]:.1f} | {r[5]:.2f}x |")
    if ray_start is not None:
        print(f"\nRay local cluster start-up (not in the rows): {ray_start:.1f} s")


_PRED: dict = {}


def _init(model: str) -> None:
    from genrescope.library.core import make_predictor

    _PRED["p"] = make_predictor(model, threads=1)


def _agreement_one(path: str) -> dict:
    from genrescope.library.core import analyse

    out = {"path": path}
    for n in (0, *WINDOWS):
        t0 = time.perf_counter()
        a = analyse(_PRED["p"], path, n)
        out[n] = (a["genres"][0][0], time.perf_counter() - t0, a["duration_s"])
    return out


def _real_tracks(per_genre: int) -> tuple[list[str], list[str]]:
    import csv

    manifest = SHARED / "gtzan" / "audio" / "MANIFEST.tsv"
    rows = list(csv.DictReader(manifest.open(), delimiter="\t"))
    by_genre: dict[str, list[str]] = {}
    for r in sorted(rows, key=lambda r: r["track"]):
        by_genre.setdefault(r["genre"], []).append(str(manifest.parent / r["path"]))
    short = [p for g in sorted(by_genre) for p in by_genre[g][:per_genre]]
    free = SHARED / "free-music"
    long = sorted(str(p) for p in free.rglob("*") if p.suffix in (".ogg", ".opus") and p.name != "silence.ogg")
    return short, long


def run_windows(args) -> None:
    if not SHARED.is_dir():
        raise SystemExit(f"{SHARED} is not here: the agreement table needs the real music")
    short, long = _real_tracks(args.per_genre)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.jobs, initializer=_init, initargs=(args.model,)) as pool:
        results = list(pool.map(_agreement_one, short + long))
    print(f"\nmodel {args.model}; {len(short)} GTZAN excerpts (30 s), {len(long)} free-music tracks "
          f"({min(r[0][2] for r in results[len(short):]):.0f}-{max(r[0][2] for r in results[len(short):]):.0f} s); "
          f"{time.perf_counter() - t0:.0f} s wall\n")
    print("| --windows N | top genre = full analysis, GTZAN 30 s | long tracks | all | time vs full (long tracks) |")
    print("| --- | --- | --- | --- | --- |")
    for n in WINDOWS:
        agree = [r[n][0] == r[0][0] for r in results]
        a_short, a_long = agree[:len(short)], agree[len(short):]
        speed = np.mean([r[n][1] / r[0][1] for r in results[len(short):]])
        print(f"| {n} | {sum(a_short)}/{len(a_short)} ({np.mean(a_short):.0%}) | {sum(a_long)}/{len(a_long)} "
              f"({np.mean(a_long):.0%}) | {np.mean(agree):.0%} | {speed:.2f} |")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--model", default="default")
    s.add_argument("--n30", type=int, default=8, help="30 s tracks (default: %(default)s)")
    s.add_argument("--n240", type=int, default=2, help="4-minute tracks (default: %(default)s)")
    s.add_argument("-j", "--jobs", type=int, default=2)
    s.add_argument("--no-ray", action="store_true")
    w = sub.add_parser("windows")
    w.add_argument("--model", default="default")
    w.add_argument("--per-genre", type=int, default=4, help="GTZAN excerpts per genre (default: %(default)s)")
    w.add_argument("-j", "--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    run_speed(args) if args.what == "speed" else run_windows(args)


if __name__ == "__main__":
    main()
