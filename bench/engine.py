"""Throughput per worker of `genrescope features` and `genrescope embed` on the engines.

    python bench/engine.py [--n 40] [--n-features 200] [--seconds 30] [-j 2] [--backbone musicnn-msd] [--no-ray]

Generates ``--n-features`` tracks of ``--seconds`` s (44.1 kHz stereo mp3, like
bench/tag.py, in 3 folders so that `embed` reads them as a folder-per-genre dataset;
`embed` gets the first ``--n``: features take a few tens of ms a file, so 40 files would
measure mostly the workers' start-up) and runs, measured in
the same run, each command three ways on a fresh cache: one worker process (``-j 1``, the
baseline), ``-j N`` local worker processes, and Ray on a local cluster of N workers (its
start-up measured apart; actor start and model loads are inside each Ray row, as pool
start and model loads are inside the local rows):

    genrescope features LIB --set log-mel --cache CACHE -j J [--engine ray]
    genrescope embed LIB --backbone B --out OUT --cache CACHE -j J [--engine ray]

It prints files per minute and seconds of audio per second, in all and per worker, and
the speed-up over ``-j 1``, and checks that every run wrote the same outputs.
"""
from __future__ import annotations

import argparse
import contextlib
import filecmp
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tag import make_library  # noqa: E402  (the same generated songs as the tag benchmark)


def commands(lib: Path, work: Path, name: str, backbone: str) -> dict[str, list[str]]:
    return {"features": ["features", str(lib), "--set", "log-mel", "--cache", str(work / name / "fcache"),
                         "--no-progress"],
            "embed": ["embed", str(lib), "--backbone", backbone, "--out", str(work / name / "emb"), "--cache",
                      str(work / name / "ecache"), "--no-progress"]}


def timed(argv: list[str]) -> float:
    from genrescope.commands import main

    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        rc = main(argv)
    seconds = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit(f"genrescope {' '.join(argv)}: exit code {rc}")
    return seconds


def same_outputs(a: Path, b: Path) -> bool:
    files = sorted(str(p.relative_to(a)) for p in a.rglob("*") if p.is_file())
    if files != sorted(str(p.relative_to(b)) for p in b.rglob("*") if p.is_file()):
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, files, shallow=False)
    return not mismatch and not errors


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=40, help="tracks for embed (default: %(default)s)")
    ap.add_argument("--n-features", type=int, default=200, help="tracks for features (default: %(default)s)")
    ap.add_argument("--seconds", type=float, default=30.0, help="seconds per track (default: %(default)s)")
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--backbone", default="musicnn-msd")
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args(argv)
    t_all = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    modes = [("one process (-j 1)", 1, []), (f"local (-j {args.jobs})", args.jobs, [])]
    ray_start = None
    if not args.no_ray:
        try:
            import ray
        except ImportError:
            print("ray is not installed (pip install 'genrescope[ray]'): no Ray rows", file=sys.stderr)
        else:
            t0 = time.perf_counter()
            ray.init(num_cpus=args.jobs, include_dashboard=False, log_to_driver=False)
            ray_start = time.perf_counter() - t0
            modes.append((f"Ray local ({args.jobs} workers)", args.jobs, ["--engine", "ray"]))
    rows = []
    try:
        libs = {"features": make_library(work / "lib", max(args.n_features, args.n), args.seconds),
                "embed": work / "lib-embed"}
        for src in sorted(libs["features"].rglob("*.mp3")):
            if int(src.stem.removeprefix("track")) >= args.n:  # the first n of every folder: all 3 genres
                continue
            dest = libs["embed"] / src.relative_to(libs["features"])
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dest)
        for what, n in (("features", max(args.n_features, args.n)), ("embed", args.n)):
            base = ref = None
            audio_s = n * args.seconds
            for label, jobs, engine in modes:
                name = f"{what}-{jobs}-{'ray' if engine else 'local'}"
                argv = commands(libs[what], work, name, args.backbone)[what] + ["-j", str(jobs), *engine]
                s = timed(argv)
                out = work / name
                same = "reference" if ref is None else ("same" if same_outputs(ref, out) else "DIFFERENT")
                base, ref = base or s, ref or out
                rows.append((what, n, label, jobs, s, n / s * 60, audio_s / s, base / s, same))
                print(f"  {what}, {label}: {s:.1f} s ({same})", file=sys.stderr)
    finally:
        if ray_start is not None:
            import ray

            ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\ntracks of {args.seconds:g} s, 44.1 kHz stereo mp3; features --set log-mel; embed --backbone "
          f"{args.backbone}; {os.cpu_count()} cores; load average at the end {load}\n")
    print("| command | files | engine | seconds | files/min | files/min per worker | audio s/s per worker "
          "| vs one process | outputs |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for what, n, label, jobs, s, fpm, aps, speedup, same in rows:
        print(f"| {what} | {n} | {label} | {s:.1f} | {fpm:.0f} | {fpm / jobs:.0f} | {aps / jobs:.1f} | "
              f"{speedup:.2f}x | {same} |")
    if ray_start is not None:
        print(f"\nRay local cluster start-up (not in the rows): {ray_start:.1f} s")
    print(f"whole benchmark: {time.perf_counter() - t_all:.0f} s wall")


if __name__ == "__main__":
    main()
