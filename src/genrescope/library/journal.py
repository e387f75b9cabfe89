"""The journal of a tagging job: which files are finished, so a rerun does only the rest.

A SQLite file (standard library) with one row per finished file, keyed by path and job
(the settings that decide the result: model, windows, top, threshold, write mode), holding
the file's size and modification time *after* the run touched it and the file's full
report record. A rerun takes the record when path, size and mtime still match, and redoes
the file otherwise. Before a file is rewritten, its previous and planned tags are stored
as *pending*, so that after a kill between the rename and the journal's commit the next
run still knows the tags the file had before (and ``--undo`` still restores them).

Failed files are not journaled: a rerun tries them again.
"""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from genrescope.errors import GenrescopeError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS done (
    path TEXT NOT NULL, job TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    record TEXT NOT NULL, PRIMARY KEY (path, job));
CREATE TABLE IF NOT EXISTS pending (
    path TEXT NOT NULL, job TEXT NOT NULL, previous TEXT NOT NULL, planned TEXT NOT NULL,
    PRIMARY KEY (path, job));
"""


#: The first bytes of every SQLite database file.
SQLITE_MAGIC = b"SQLite format 3\x00"


def is_journal(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a SQLite file (a tagging journal, not a report)."""
    try:
        with open(path, "rb") as f:
            return f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def default_path(report_path: str | os.PathLike) -> Path:
    """Where a report's journal lives unless told otherwise: beside it, ``REPORT.journal``."""
    p = Path(report_path)
    return p.with_name(p.name + ".journal")


class Journal:
    """One job's journal.

    Parameters
    ----------
    path : path-like or None
        The SQLite file (created when missing); None keeps it in memory (nothing resumes).
    job : str
        Key of the settings; records of other settings are ignored.
    """

    def __init__(self, path: str | os.PathLike | None, job: str):
        self.path, self.job = path, job
        target = ":memory:" if path is None else str(path)
        try:
            if path is not None:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(target)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as e:
            raise GenrescopeError(f"{path}: cannot open the tagging journal ({e})") from e

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def lookup(self, path: str, st: os.stat_result) -> dict | None:
        """The finished record of ``path`` if its size and mtime are unchanged."""
        row = self.db.execute("SELECT size, mtime_ns, record FROM done WHERE path=? AND job=?",
                              (path, self.job)).fetchone()
        if row is None or row[0] != st.st_size or row[1] != st.st_mtime_ns:
            return None
        return json.loads(row[2])

    def finish(self, path: str, st: os.stat_result, record: dict, *, rewritten: bool = False) -> None:
        """Record ``path`` as finished (its status ``st`` after the write) and drop its pending row.

        ``rewritten``: this job changed the file. A rewrite keeps the modification time and
        often the size (tag padding), so other jobs' records of the file are dropped here.
        """
        with self.db:
            if rewritten:
                self.db.execute("DELETE FROM done WHERE path=? AND job<>?", (path, self.job))
            self.db.execute("INSERT OR REPLACE INTO done VALUES (?, ?, ?, ?, ?)",
                            (path, self.job, st.st_size, st.st_mtime_ns, json.dumps(record)))
            self.db.execute("DELETE FROM pending WHERE path=? AND job=?", (path, self.job))

    def begin_write(self, path: str, previous: dict, planned: dict) -> None:
        """Store the tags ``path`` has now and will have, before rewriting it."""
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO pending VALUES (?, ?, ?, ?)",
                            (path, self.job, json.dumps(previous), json.dumps(planned)))

    def pending(self, path: str) -> tuple[dict, dict] | None:
        """``(previous, planned)`` of an interrupted write of ``path``, or None."""
        row = self.db.execute("SELECT previous, planned FROM pending WHERE path=? AND job=?",
                              (path, self.job)).fetchone()
        return None if row is None else (json.loads(row[0]), json.loads(row[1]))

    def written_records(self) -> list[dict]:
        """Every change this journal knows was made or begun, of any job, as report-like records.

        Finished writes are their ``written`` records; an interrupted one (a pending row: the
        run was killed around the rename) is ``{"path", "status": "pending", "written": the
        changed fields' planned values, "previous": their values before}``.
        """
        out = []
        for (text,) in self.db.execute("SELECT record FROM done ORDER BY path"):
            rec = json.loads(text)
            if rec.get("status") == "written" and rec.get("written"):
                out.append(rec)
        for path, prev, plan in self.db.execute("SELECT path, previous, planned FROM pending ORDER BY path"):
            previous, planned = json.loads(prev), json.loads(plan)
            changed = {k: v for k, v in planned.items() if v != previous.get(k)}
            if changed:
                out.append({"path": path, "status": "pending", "written": changed,
                            "previous": {k: previous.get(k) for k in changed}})
        return out

    def forget(self, path: str) -> None:
        """Drop every record of ``path`` (all jobs): after an undo the file must be redone."""
        with self.db:
            self.db.execute("DELETE FROM done WHERE path=?", (path,))
            self.db.execute("DELETE FROM pending WHERE path=?", (path,))
