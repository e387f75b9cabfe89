"""``genrescope tag``: genres for a whole library, into a report and (with --write) the files.

The run: walk the paths, take every file the journal already finished (same path, size
and modification time), analyse the rest on the chosen engine, plan and make each tag
change in this process (crash-safe, journaled), and write the report of the whole
library, sorted by path. ``--undo REPORT`` puts back the previous values a report holds.
"""
from __future__ import annotations

import os
import sys

from genrescope.errors import GenrescopeError
from genrescope.library import report as R
from genrescope.library.core import TagOptions, record, tag_file
from genrescope.library.journal import Journal, default_path
from genrescope.library.walk import Skipped, walk

DEFAULT_REPORT = "genrescope-tag.csv"


def options_from(args) -> TagOptions:
    if args.top < 1:
        raise GenrescopeError(f"--top {args.top}: must be 1 or more")
    if not 0.0 <= args.min_confidence <= 1.0:
        raise GenrescopeError(f"--min-confidence {args.min_confidence}: must be between 0 and 1")
    if args.windows < 0:
        raise GenrescopeError(f"--windows {args.windows}: must be 0 (all) or more")
    return TagOptions(model=args.model, top=args.top, min_confidence=args.min_confidence, windows=args.windows,
                      write=args.write, overwrite=args.overwrite, runtime=args.runtime)


def tag_library(paths: list[str], opts: TagOptions, *, report_path: str, journal: str | None = None,
                engine: str = "local", jobs: int = 1, ray_address: str | None = None,
                progress: bool = False) -> list[dict]:
    """Run a whole tagging job and write its report; returns the records (sorted by path).

    ``engine`` and ``jobs`` as :func:`genrescope.engines.map_files` takes them (``jobs`` 0:
    every core, or every CPU of the Ray cluster).
    """
    from genrescope.engines import map_files
    from genrescope.library.engine import Progress, TagTask

    files, records = [], []
    for item in walk([os.path.abspath(p) for p in paths]):
        if isinstance(item, Skipped):
            records.append(record(item.path, None, status="failed", error=item.error))
        else:
            files.append(str(item))
    from genrescope.library.core import learnt_thresholds

    learnt = learnt_thresholds(opts.model)
    key = opts.job_key()
    if learnt is not None:  # a model learnt again at the same path: its new thresholds are a new job
        import hashlib
        import json

        key += "-" + hashlib.sha1(json.dumps(learnt, sort_keys=True).encode()).hexdigest()[:8]
    with Journal(journal or default_path(report_path), key) as jr:
        todo = []
        for f in files:
            try:
                hit = jr.lookup(f, os.stat(f))
            except OSError as e:
                records.append(record(f, None, status="failed", error=f"{f}: vanished ({e.strerror})"))
                continue
            if hit is None:
                todo.append(f)
            else:
                records.append(hit)
        if todo and (engine != "local" or jobs != 1):
            from genrescope.library.core import make_predictor

            make_predictor(opts.model, runtime=opts.runtime)  # a bad --model: one error here, not per worker
        bar = Progress(len(todo), progress)
        task = TagTask(opts.model, opts.runtime, opts.windows)
        for i, analysis, error in map_files(todo, task, engine=engine, jobs=jobs, address=ray_address):
            path = todo[i]
            records.append(record(path, None, status="failed", error=error) if error
                           else tag_file(path, analysis, opts, jr, learnt))
            bar.step()
        bar.close()
    R.write(report_path, records)
    return sorted(records, key=lambda r: r["path"])


def _summary(records: list[dict], opts: TagOptions, report_path: str) -> str:
    counts: dict[str, int] = {}
    for r in records:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    dry = "" if opts.write else " (dry run: nothing written; add --write)"
    exp = [r["expected_precision"] for r in records if r.get("expected_precision") is not None]
    sure = (f"; {len(exp)} genres {'written' if opts.write else 'to write'} at the learnt thresholds, "
            f"expected precision {sum(exp) / len(exp):.2f}") if exp else ""
    return f"{len(records)} files: {parts}{dry}{sure}; report: {report_path}"


def run_tag(args) -> int:
    """Handler of ``genrescope tag``; exit code 1 when any file failed."""
    if args.undo:
        from genrescope.library.undo import run_undo

        return run_undo(args.undo, journal=args.journal)
    if not args.paths:
        raise GenrescopeError("tag: give the folders or files to tag (or --undo REPORT)")
    opts = options_from(args)
    report_path = args.report or DEFAULT_REPORT
    records = tag_library(args.paths, opts, report_path=report_path, journal=args.journal, engine=args.engine,
                          jobs=args.jobs, ray_address=args.ray_address, progress=not args.no_progress)
    failed = [r for r in records if r["status"] == "failed"]
    for r in failed:
        print(f"genrescope: {r['error']}", file=sys.stderr)
    print(_summary(records, opts, report_path), file=sys.stderr)
    return 1 if failed else 0
