"""``genrescope features``: per-file feature tables (summaries, the GTZAN table), or a
whole dataset into the feature cache; both on the engines (``--engine local|ray``)."""
from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterator

from genrescope.config import DEFAULT_FEATURES, FeatureConfig
from genrescope.engines.worker import cpu_count
from genrescope.errors import GenrescopeError
from genrescope.features.cache import SET_KINDS, ExtractReport, FeatureCache, compute_file, extract_many


def table_columns(feature_set: str, cfg: FeatureConfig) -> list[str]:
    """Column names of ``genrescope features --set SET --format ...``.

    ``gtzan-table``: ``filename`` and the 57 columns of the GTZAN features table.
    ``log-mel`` / ``mfcc`` / ``stft``: ``filename, n_frames, duration_s`` and, for every
    band i, the mean and standard deviation over time of the feature
    (``mel{i}_mean, mel{i}_std``, ``mfcc{i}_...``, ``stft{i}_...``; dB for mel and stft).
    """
    if feature_set == "gtzan-table":
        return ["filename"] + [c for c in _gtzan_table().COLUMNS if c != "filename"]
    from genrescope.features.spectrogram import n_bins

    kind, prefix = SET_KINDS[feature_set]
    return ["filename", "n_frames", "duration_s"] + [
        f"{prefix}{i}_{stat}" for i in range(n_bins(cfg, kind)) for stat in ("mean", "std")]


def table_row(path: str | os.PathLike, feature_set: str, cfg: FeatureConfig) -> dict:
    """The output row of one file (see :func:`table_columns`); raises GenrescopeError."""
    import numpy as np

    name = Path(path).name
    if feature_set == "gtzan-table":
        mod = _gtzan_table()
        values = mod.extract_row(path)
        return {"filename": name, **{c: values[c] for c in mod.COLUMNS if c != "filename"}}
    kind, _ = SET_KINDS[feature_set]
    feats, seconds = compute_file(path, cfg, kind)  # (n_bins, n_frames)
    stats = np.stack([feats.mean(axis=1, dtype=np.float64), feats.std(axis=1, dtype=np.float64)], axis=1)
    row: dict = {"filename": name, "n_frames": int(feats.shape[1]), "duration_s": round(seconds, 4)}
    row.update(zip(table_columns(feature_set, cfg)[3:], (round(float(v), 4) for v in stats.ravel())))
    return row


def _gtzan_table():
    try:
        from genrescope.features import gtzan_table
    except ModuleNotFoundError as e:
        if e.name != "genrescope.features.gtzan_table":
            raise
        raise GenrescopeError("--set gtzan-table: this genrescope has no genrescope.features.gtzan_table module") from e
    return gtzan_table


@dataclass(frozen=True)
class TableTask:
    """The engines' task of ``--format``: a file -> its :func:`table_row`."""

    feature_set: str
    cfg: FeatureConfig
    isolate: ClassVar[bool] = False  # rows are rounded: -j 1 may run here, with every thread

    def open(self, threads: int | None):
        return lambda path: table_row(path, self.feature_set, self.cfg)


def _rows_in_order(files: list[Path], feature_set: str, cfg: FeatureConfig, jobs: int, engine: str = "local",
                   address: str | None = None) -> Iterator[tuple[dict | None, str | None]]:
    """``(row, None)`` or ``(None, error naming the file)`` per file, in the order of ``files``."""
    from genrescope.engines import in_order, map_files

    paths = [str(f) for f in files]
    results = map_files(paths, TableTask(feature_set, cfg), engine=engine, jobs=jobs, address=address)
    for i, row, err in in_order(results, len(paths)):
        yield row, None if err is None else (err if paths[i] in err else f"{paths[i]}: {err}")


def _jsonable(v):
    """JSON has no NaN or infinity: they become null."""
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _print_table(files: list[Path], feature_set: str, fmt: str, cfg: FeatureConfig, jobs: int, engine: str = "local",
                 address: str | None = None) -> int:
    import csv

    columns = table_columns(feature_set, cfg)
    writer = csv.writer(sys.stdout, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writerow(columns)
    failed = 0
    for row, err in _rows_in_order(files, feature_set, cfg, jobs, engine, address):
        if err is not None:
            failed += 1
            print(f"genrescope: {err}", file=sys.stderr)
        elif writer is not None:
            writer.writerow([row[c] for c in columns])
        else:
            print(json.dumps({c: _jsonable(row[c]) for c in columns}))
        sys.stdout.flush()  # rows appear as files finish, also when piped
    return 1 if failed else 0


def _print_report(report: ExtractReport, cache: FeatureCache, workers: str) -> None:
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


def run_features(args) -> int:
    """``genrescope features``: a table to stdout (--format), else fill the feature cache."""
    from genrescope.audio.decode import find_audio_files

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
