"""``genrescope tag --undo REPORT``: put back the tag values a report says a run replaced.

Only fields the run wrote are touched, and only where they still hold what the run
wrote: a file whose tags were edited since is reported and left alone. The files are
rewritten crash-safely, like the run itself, and dropped from the run's journal so that
the next run redoes them.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from genrescope.errors import GenrescopeError
from genrescope.library import report as R
from genrescope.library import tags as T
from genrescope.library.journal import Journal, default_path
from genrescope.library.safe_write import rewrite


def undo_file(rec: dict) -> str:
    """Restore one record's previous values; returns ``restored`` or raises GenrescopeError."""
    path, written, previous = rec["path"], rec.get("written") or {}, rec.get("previous") or {}
    try:
        kind, current = T.read_snapshot(path)
    except OSError as e:
        raise GenrescopeError(f"{path}: cannot be read ({e.strerror or e})") from e
    if kind is None:
        raise GenrescopeError(f"{path}: no longer holds tags genrescope wrote")
    changed = [k for k, v in written.items() if current.get(k) != v]
    if changed:
        raise GenrescopeError(f"{path}: {', '.join(changed)} changed since the run; not restored")
    plan = dict(current)
    plan.update({k: previous.get(k) for k in written})
    rewrite(path, lambda tmp: T.apply_snapshot(tmp, kind, plan))
    return "restored"


def undo(report_path: str | os.PathLike, journal: str | os.PathLike | None = None) -> tuple[int, list[str]]:
    """Undo a report; returns ``(files restored, errors)``."""
    records = [r for r in R.read(report_path) if r.get("status") == "written" and r.get("written")]
    jpath = Path(journal) if journal else default_path(report_path)
    jr = Journal(jpath, "undo") if jpath.exists() else None
    restored, errors = 0, []
    try:
        for rec in records:
            try:
                undo_file(rec)
            except GenrescopeError as e:
                errors.append(str(e))
                continue
            restored += 1
            if jr is not None:
                jr.forget(rec["path"])
    finally:
        if jr is not None:
            jr.close()
    return restored, errors


def run_undo(report_path: str, journal: str | None = None) -> int:
    restored, errors = undo(report_path, journal)
    for e in errors:
        print(f"genrescope: {e}", file=sys.stderr)
    print(f"{restored} files restored, {len(errors)} failed (from {report_path})", file=sys.stderr)
    return 1 if errors else 0
