"""``genrescope tag --undo REPORT``: put back the tag values a report says a run replaced.

``--undo`` also takes a run's journal (``REPORT.journal``), which a killed run leaves
behind without a report: it knows every write the run made, and a write the kill cut short.
A report that does not exist is replaced by its journal when that exists.

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
from genrescope.library.journal import Journal, default_path, is_journal
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


def _still_before(rec: dict) -> bool:
    """Whether an interrupted write never reached the file (it still holds the previous values)."""
    try:
        current = T.read_snapshot(rec["path"])[1]
    except OSError:
        return False
    return all(current.get(k) == v for k, v in rec["previous"].items())


def _records(source: str | os.PathLike, journal: str | os.PathLike | None) -> tuple[list[dict], Path | None]:
    """The writes to undo, from a report or a journal, and the journal to update."""
    src = Path(source)
    if not src.exists() and default_path(src).exists():  # the run was killed before its report
        src = default_path(src)
    if is_journal(src):
        with Journal(src, "undo") as jr:
            return jr.written_records(), src
    records = [r for r in R.read(src) if r.get("status") == "written" and r.get("written")]
    jpath = Path(journal) if journal else default_path(src)
    return records, jpath if jpath.exists() else None


def undo(report_path: str | os.PathLike, journal: str | os.PathLike | None = None) -> tuple[int, list[str]]:
    """Undo a report (or a run's journal); returns ``(files restored, errors)``."""
    records, jpath = _records(report_path, journal)
    jr = Journal(jpath, "undo") if jpath is not None else None
    restored, errors = 0, []
    try:
        for rec in records:
            if rec["status"] == "pending" and _still_before(rec):
                if jr is not None:
                    jr.forget(rec["path"])
                continue  # killed before the rename: nothing reached the file
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
