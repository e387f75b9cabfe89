"""One tagging job over a whole library: into a report and (with ``write``) the files (``genrescope tag``).

The run: walk the paths, take every file the journal already finished (same path, size
and modification time), analyse the rest on the chosen engine, plan and make each tag
change in this process (crash-safe, journaled), and write the report of the whole
library, sorted by path. ``--undo REPORT`` puts back the previous values a report holds.
"""
from __future__ import annotations

import os

from genrescope.library import report as R
from genrescope.library.core import PredictorFactory, TagOptions, record, tag_file
from genrescope.library.journal import Journal, default_path
from genrescope.library.walk import Skipped, walk

DEFAULT_REPORT = "genrescope-tag.csv"


def _shipped(model: str, predictor_factory) -> bool:
    """A shipped model by name (part of the package: the workers load it without a check here first)."""
    from genrescope.inference.registry import pretrained_names

    return predictor_factory is None and (model == "default" or model in pretrained_names())


def tag_library(paths: list[str], opts: TagOptions, *, report_path: str, journal: str | None = None,
                engine: str = "local", jobs: int = 1, ray_address: str | None = None,
                progress: bool = False, predictor_factory: PredictorFactory | None = None) -> list[dict]:
    """Run a whole tagging job and write its report; returns the records (sorted by path).

    ``engine`` and ``jobs`` as :func:`genrescope.engines.map_files` takes them (``jobs`` 0:
    every core, or every CPU of the Ray cluster). ``predictor_factory`` builds the predictor
    of ``opts.model`` in each worker instead of :func:`~genrescope.library.core.make_predictor`
    (see :data:`~genrescope.library.core.PredictorFactory`).
    """
    from genrescope.engines import map_files
    from genrescope.library.engine import TagTask
    from genrescope.progress import Progress

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
        task = TagTask(opts.model, opts.runtime, opts.windows, predictor_factory)
        if todo and (engine != "local" or jobs != 1) and not _shipped(opts.model, predictor_factory):
            task.open(None)  # a bad --model: one error here, not per worker
        bar = Progress(len(todo), progress)
        for i, analysis, error in map_files(todo, task, engine=engine, jobs=jobs, address=ray_address):
            path = todo[i]
            records.append(record(path, None, status="failed", error=error) if error
                           else tag_file(path, analysis, opts, jr, learnt))
            bar.step()
        bar.close()
    R.write(report_path, records)
    return sorted(records, key=lambda r: r["path"])
