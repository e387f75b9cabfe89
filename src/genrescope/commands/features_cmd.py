"""``genrescope features``: per-file feature tables to stdout (``--format``), or a whole
dataset into the feature cache; both on the engines (``--engine local|ray``)."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from genrescope.commands._args import add_cache, add_engine, add_progress

NAME = "features"


def add_parser(sub) -> None:
    p = sub.add_parser(
        NAME, help="compute features: a per-file table to stdout, or a dataset into the feature cache",
        description="With --format, print one row of features per file to stdout (e.g. --set gtzan-table "
                    "--format csv reproduces the 57 columns of the GTZAN features table). Without --format, "
                    "extract --set for every audio file under PATH into the feature cache, in parallel, "
                    "resuming where a previous run stopped. Cache entries are keyed by file content and "
                    "feature config (<cache>/<set>-<config key>/<aa>/<hash>.npy, a float32 (bins, frames) "
                    "array each), so renamed files are not re-extracted. Unreadable files are reported on "
                    "stderr and skipped; the exit code is 1 if any failed.",
        epilog="examples: genrescope features song.mp3 --set gtzan-table --format csv; "
               "genrescope features music/ --set log-mel -j 4")
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files, folders or glob patterns")
    p.add_argument("--set", dest="feature_set", default="log-mel",
                   choices=("log-mel", "mfcc", "stft", "gtzan-table"),
                   help="which features (default: %(default)s)")
    p.add_argument("--format", choices=("csv", "json"), default=None,
                   help="print a table to stdout (json: one object per line) instead of filling the cache. "
                        "log-mel/mfcc/stft rows are filename, n_frames, duration_s, then the mean and std over "
                        "time of every band (mel0_mean, mel0_std, ...); gtzan-table rows are filename and the "
                        "57 GTZAN columns, and gtzan-table needs --format. Does not read or write the cache")
    add_cache(p)
    add_engine(p)
    p.add_argument("--sr", type=int, default=None, help="override the sample rate of the feature config")
    add_progress(p)


def _jsonable(v):
    """JSON has no NaN or infinity: they become null."""
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _print_table(files: list[Path], feature_set: str, fmt: str, cfg, jobs: int, engine: str = "local",
                 address: str | None = None) -> int:
    import csv

    from genrescope.features.tables import rows_in_order, table_columns

    columns = table_columns(feature_set, cfg)
    writer = csv.writer(sys.stdout, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writerow(columns)
    failed = 0
    for row, err in rows_in_order(files, feature_set, cfg, jobs, engine, address):
        if err is not None:
            failed += 1
            print(f"genrescope: {err}", file=sys.stderr)
        elif writer is not None:
            writer.writerow([row[c] for c in columns])
        else:
            print(json.dumps({c: _jsonable(row[c]) for c in columns}))
        sys.stdout.flush()  # rows appear as files finish, also when piped
    return 1 if failed else 0


def _print_report(report, cache, workers: str) -> None:
    print(f"cache:  {cache.dir}")
    print(f"files:  {report.done} extracted, {report.cached} already cached, {len(report.failed)} failed")
    if report.done:
        a = report.audio_s
        amount = f"{a / 3600:.2f} h" if a >= 3600 else f"{a / 60:.1f} min"
        print(f"audio:  {amount} in {report.wall_s:.1f} s, {report.speed:.0f}x real time ({workers})")
    for path, msg in report.warnings:
        print(f"warning: {msg if path in msg else f'{path}: {msg}'}", file=sys.stderr)
    for path, msg in report.failed:
        print(f"genrescope: failed: {msg if path in msg else f'{path}: {msg}'}", file=sys.stderr)


def run(args) -> int:
    """``genrescope features``: a table to stdout (--format), else fill the feature cache."""
    from genrescope.audio.files import find_audio_files
    from genrescope.config import DEFAULT_FEATURES
    from genrescope.engines.worker import cpu_count
    from genrescope.errors import GenrescopeError
    from genrescope.features.cache import SET_KINDS, FeatureCache, extract_many

    if args.jobs < 0:
        raise GenrescopeError(f"--jobs must be >= 0, got {args.jobs}")
    if args.feature_set == "gtzan-table":
        if args.format is None:
            raise GenrescopeError("--set gtzan-table prints a table: add --format csv or --format json")
        if args.sr is not None:
            raise GenrescopeError("--sr does not apply to --set gtzan-table (the table is defined at 22050 Hz)")
    cfg = DEFAULT_FEATURES if args.sr is None else DEFAULT_FEATURES.replace(sr=args.sr)
    files = find_audio_files(args.paths)
    if not files:
        raise GenrescopeError(f"no audio files found in {' '.join(map(str, args.paths))}")
    if args.format is not None:
        return _print_table(files, args.feature_set, args.format, cfg, args.jobs, args.engine, args.ray_address)
    cache = FeatureCache(args.cache, cfg, SET_KINDS[args.feature_set][0])
    report = extract_many(files, cache, args.jobs, progress=not args.no_progress, engine=args.engine,
                          address=args.ray_address)
    workers = f"{args.jobs or cpu_count()} jobs" if args.engine == "local" else f"Ray, {args.jobs or 'all'} workers"
    _print_report(report, cache, workers)
    return 1 if report.failed else 0
