"""Damaged audio through the Predictor, the CLI and the HTTP API: every case must end in a
prediction (perhaps with warnings) or a one-line error naming the file, in bounded time and
memory, and the server must still answer afterwards.

Sources: real files from ../shared/data (byte for byte) and files of every format written
here from real music (or generated audio without the data). Each source gets damaged copies:
truncation at random offsets, bit flips in the header and in the frames, zeroed blocks, a
wrong extension, absurd sample rates and channel counts written into the header, zero length,
huge declared sizes, the header alone. Everything is seeded.

    python bench/fuzz.py                      # all of it (about 330 cases)
    python bench/fuzz.py --per-source 6       # fewer cases per source
    python bench/fuzz.py --skip-cli --skip-api

Prints counts by outcome for each path, the worst time and the worst memory of one case.
Exit code 1 if any case broke the rules.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from genrescope.testing.fuzz_cases import MODEL, build, check_error, run_api, run_predictor

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

ERROR_LINE = re.compile(r"^genrescope: (warning: )?\S")


def run_cli(case_dir: Path, model: str, limit_s: float) -> tuple[dict, list[dict]]:
    """One ``genrescope predict`` over every case; its JSON, its stderr lines, its time and memory."""
    import resource

    cmd = [sys.executable, "-m", "genrescope", "predict", str(case_dir), "--model", model, "--format", "json",
           "-j", "2", "--no-progress"]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=limit_s)
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    rows, problems = [], []
    try:
        objs = json.loads(r.stdout)
    except ValueError as e:
        return {"rc": r.returncode, "seconds": seconds, "peak_mb": peak_mb,
                "problems": [f"stdout is not strict JSON: {e}"]}, []
    for o in objs:
        if o["error"]:
            outcome, problem = "error", check_error(o["error"], o["path"])
        else:
            outcome, problem = ("prediction+warnings" if o["warnings"] else "prediction"), None
        rows.append({"case": Path(o["path"]).name, "outcome": outcome, "problem": problem})
    for line in r.stderr.splitlines():
        if line.strip() and not ERROR_LINE.match(line):
            problems.append(f"stray stderr line: {line[:160]}")
    if r.returncode not in (0, 1):
        problems.append(f"exit code {r.returncode}")
    return {"rc": r.returncode, "seconds": seconds, "peak_mb": peak_mb, "problems": problems[:20]}, rows


def _run_api(cases: list[Path], model: str) -> tuple[list[dict], bool]:
    """Every case through the web app of ``model`` (in-process TestClient, one job worker)."""
    from fastapi.testclient import TestClient

    from genrescope.serve.app import create_app
    from genrescope.serve.settings import Settings

    with TestClient(create_app(Settings(model=model, max_jobs=1)), base_url="http://127.0.0.1") as c:
        return run_api(cases, c)


# ---------------------------------------------------------------- report
def summarise(title: str, rows: list[dict], limit_s: float, limit_mb: float) -> list[str]:
    counts = Counter(r["outcome"] for r in rows)
    bad = [r for r in rows if r.get("problem")]
    bad += [dict(r, problem=f"took {r['seconds']:.1f} s") for r in rows if r.get("seconds", 0) > limit_s]
    bad += [dict(r, problem=f"grew {r['mb']:.0f} MB") for r in rows if r.get("mb", 0) > limit_mb]
    print(f"\n{title}: {len(rows)} cases")
    for k, v in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"  {v:4d}  {k}")
    if rows and "seconds" in rows[0]:
        worst_t = max(rows, key=lambda r: r["seconds"])
        worst_m = max(rows, key=lambda r: r["mb"])
        print(f"  worst time   {worst_t['seconds']:.2f} s  ({worst_t['case']})")
        print(f"  worst memory {worst_m['mb']:.0f} MB above the start of the case  ({worst_m['case']})")
    for r in bad[:20]:
        print(f"  BROKEN {r['case']}: {r['problem']}")
    return [f"{title}: {r['case']}: {r['problem']}" for r in bad]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-source", type=int, default=26, help="damaged copies per source file (default 26)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default=MODEL)
    ap.add_argument("--limit-s", type=float, default=60.0, help="time limit of one case (default 60)")
    ap.add_argument("--limit-mb", type=float, default=1500.0, help="memory limit of one case (default 1500)")
    ap.add_argument("--skip-cli", action="store_true")
    ap.add_argument("--skip-api", action="store_true")
    ap.add_argument("--keep", metavar="DIR", help="keep the cases in DIR")
    args = ap.parse_args(argv)
    from genrescope.inference.predict import Predictor

    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="genrescope-fuzz-"))
    t0 = time.perf_counter()
    cases = build(folder, args.per_source, args.seed, shared=SHARED)
    n_src = len({c.name.split("__")[0] for c in cases})
    print(f"{len(cases)} damaged cases from {n_src} sources ({'with' if SHARED.is_dir() else 'without'} "
          f"../shared/data), model {args.model}, limits {args.limit_s:g} s / {args.limit_mb:g} MB a case")
    broken = summarise("Predictor.predict", run_predictor(cases, Predictor(args.model)), args.limit_s, args.limit_mb)
    if not args.skip_api:
        rows, alive = _run_api(cases, args.model)
        broken += summarise("HTTP API (TestClient; /api/predict and /api/predict/stream alternately)", rows,
                            args.limit_s, args.limit_mb)
        print(f"  server answers /api/health afterwards: {alive}")
        broken += [] if alive else ["HTTP API: the server stopped answering"]
    if not args.skip_cli:
        info, rows = run_cli(folder / "cases", args.model, args.limit_s * len(cases))
        broken += summarise("CLI (one `genrescope predict` over the folder, -j 2)", rows, args.limit_s, args.limit_mb)
        print(f"  exit code {info['rc']}, {info['seconds']:.1f} s in all, peak memory {info['peak_mb']:.0f} MB")
        for p in info["problems"]:
            print(f"  BROKEN {p}")
        broken += info["problems"]
        if len(rows) != len(cases):
            broken.append(f"CLI: {len(rows)} results for {len(cases)} files")
    print(f"\n{len(broken)} broken; {time.perf_counter() - t0:.0f} s in all")
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
