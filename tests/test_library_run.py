"""`genrescope tag` runs: walking odd collections, the journal (skip, redo, resume, a write
cut short), the CLI's exit code and reports, and the local engine's worker processes."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from genrescope.commands import main
from genrescope.library import report as R
from genrescope.library import tags as T
from genrescope.library.tag_run import tag_library
from genrescope.library.core import TagOptions
from genrescope.library.journal import Journal
from genrescope.library.walk import Skipped, walk
from helpers.library import DyingPredictor, FakePredictor, make_library, run_tag, write_track


class CountingPredictor(FakePredictor):
    """Counts predictions; with ``vanish`` set, deletes that file at the first prediction."""

    calls: list[str] = []
    vanish: str | None = None
    stop_after: int | None = None

    def predict(self, path, offset=None, duration=None):
        if CountingPredictor.stop_after is not None and len(CountingPredictor.calls) >= CountingPredictor.stop_after:
            raise KeyboardInterrupt  # a user's Ctrl-C mid-run
        CountingPredictor.calls.append(str(path))
        if CountingPredictor.vanish and os.path.exists(CountingPredictor.vanish):
            os.remove(CountingPredictor.vanish)
        return super().predict(path)


@pytest.fixture(autouse=True)
def counting():
    CountingPredictor.calls, CountingPredictor.vanish, CountingPredictor.stop_after = [], None, None


def _tag(root, report, factory=CountingPredictor, **kw):
    jobs = kw.pop("jobs", 1)
    return tag_library([str(root)], TagOptions(model="fake", **kw), report_path=str(report), jobs=jobs,
                       predictor_factory=factory)


def test_walk_odd_collections(tmp_path, monkeypatch):
    lib = tmp_path / "lib"
    a = write_track(lib / "x" / "deep" / "a.flac", "flac")
    write_track(lib / "b.mp3", "mp3")
    (lib / "cover.jpg").write_bytes(b"\xff\xd8")  # not audio by name: ignored inside folders
    (lib / "._b.mp3").write_bytes(b"\0\5\x16\7")  # a macOS resource fork: hidden, ignored
    (lib / "x" / "loop").symlink_to(lib)  # a loop
    (lib / "alias").symlink_to(lib / "x")  # a second way into a folder: walked once, no error
    (lib / "dup.flac").symlink_to(a)  # the same file twice: processed once
    (lib / "gone.mp3").symlink_to(tmp_path / "nowhere.mp3")
    (lib / "self.ogg").symlink_to(lib / "self.ogg")
    locked = lib / "locked"
    locked.mkdir()
    real_listdir = os.listdir

    def listdir(path):  # chmod 000 does not stop root, so the denial is simulated
        if os.path.samefile(path, locked):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_listdir(path)

    monkeypatch.setattr(os, "listdir", listdir)
    items = list(walk([lib, tmp_path / "missing.mp3"]))
    files = sorted(os.path.relpath(p, lib) for p in items if isinstance(p, Path))
    errors = sorted(s.error for s in items if isinstance(s, Skipped))
    assert files == ["alias/deep/a.flac", "b.mp3"]  # sorted walk: the alias comes first
    assert any("gone.mp3: broken symlink" in e for e in errors)
    assert any("self.ogg: symlink loop" in e for e in errors)
    assert any("loop: symlink loop" in e for e in errors)
    assert any("locked: permission denied" in e for e in errors)
    assert any("missing.mp3" in e for e in errors)
    assert len(errors) == 5


def test_rerun_skips_finished_files_and_redoes_changed_ones(tmp_path):
    files = make_library(tmp_path / "lib")
    first = _tag(tmp_path / "lib", tmp_path / "r.csv", write=True)
    assert len(CountingPredictor.calls) == len(files)
    CountingPredictor.calls.clear()
    again = _tag(tmp_path / "lib", tmp_path / "r.csv", write=True)
    assert CountingPredictor.calls == [] and again == first
    os.utime(files[0], ns=(0, 10**18))  # changed (a tagger touched it)
    _tag(tmp_path / "lib", tmp_path / "r.csv", write=True)
    assert CountingPredictor.calls == [str(files[0])]
    CountingPredictor.calls.clear()
    _tag(tmp_path / "lib", tmp_path / "r.csv", write=True, top=2)  # other settings: a new job
    assert len(CountingPredictor.calls) == len(files)


def test_resumed_run_reports_the_whole_library_and_undo_restores_all(tmp_path):
    files = make_library(tmp_path / "lib", per_format=2)
    tags0 = {p: T.read_snapshot(p) for p in files}
    CountingPredictor.stop_after = 4
    with pytest.raises(KeyboardInterrupt):
        _tag(tmp_path / "lib", tmp_path / "r.jsonl", write=True)
    assert not (tmp_path / "r.jsonl").exists()
    CountingPredictor.stop_after = None
    CountingPredictor.calls.clear()
    recs = _tag(tmp_path / "lib", tmp_path / "r.jsonl", write=True)
    assert len(CountingPredictor.calls) == len(files) - 4
    assert [r["status"] for r in R.read(tmp_path / "r.jsonl")] == ["written"] * len(files)
    assert main(["tag", "--undo", str(tmp_path / "r.jsonl")]) == 0
    assert {p: T.read_snapshot(p) for p in files} == tags0
    assert len(recs) == len(files)


@pytest.mark.parametrize("give", ["journal", "report"])
def test_undo_of_a_killed_run_from_its_journal(tmp_path, give):
    """A killed run leaves a journal and no report: ``--undo`` takes the journal (or the report
    name, whose journal stands in for it) and restores every file the run wrote."""
    files = make_library(tmp_path / "lib", per_format=2)
    tags0 = {p: T.read_snapshot(p) for p in files}
    CountingPredictor.stop_after = 4
    with pytest.raises(KeyboardInterrupt):
        _tag(tmp_path / "lib", tmp_path / "r.csv", write=True)
    assert not (tmp_path / "r.csv").exists()
    touched = [p for p in files if T.read_snapshot(p) != tags0[p]]
    assert touched  # the killed run wrote some files
    target = tmp_path / ("r.csv.journal" if give == "journal" else "r.csv")
    assert main(["tag", "--undo", str(target)]) == 0
    assert {p: T.read_snapshot(p) for p in files} == tags0
    # the journal forgot them: a new run redoes every file, and finds no "existing" genre of the killed run
    CountingPredictor.stop_after = None
    CountingPredictor.calls.clear()
    recs = _tag(tmp_path / "lib", tmp_path / "r2.csv", write=True)
    assert not any(r["note"] and "existing genre kept" in r["note"] for r in recs if Path(r["path"]) in touched)


def test_undo_from_a_journal_with_a_write_cut_short(tmp_path, monkeypatch):
    """Killed after the rename but before the journal's commit: the journal's pending row is
    enough for ``--undo JOURNAL`` to restore the file."""
    p = write_track(tmp_path / "lib" / "a.mp3", "mp3")
    monkeypatch.setattr(Journal, "finish", lambda *a, **k: (_ for _ in ()).throw(SystemExit("killed")))
    with pytest.raises(SystemExit):
        _tag(tmp_path / "lib", tmp_path / "r.csv", write=True)
    assert T.read_snapshot(p)[1]["TCON"]
    monkeypatch.undo()
    assert main(["tag", "--undo", str(tmp_path / "r.csv.journal")]) == 0
    assert T.read_snapshot(p)[1] == {"TCON": None, "TXXX:GENRESCOPE": None}


def test_write_cut_short_before_the_journal_commit(tmp_path, monkeypatch):
    """Killed after the rename but before the journal says done: the next run still knows
    the previous tags, so its report can undo the file."""
    p = write_track(tmp_path / "lib" / "a.mp3", "mp3")
    calls = []
    real = Journal.finish

    def crash_once(self, path, st, record, **kw):
        if not calls:
            calls.append(path)
            raise SystemExit("killed")
        return real(self, path, st, record, **kw)

    monkeypatch.setattr(Journal, "finish", crash_once)
    with pytest.raises(SystemExit):
        _tag(tmp_path / "lib", tmp_path / "r.csv", write=True)
    assert T.read_snapshot(p)[1]["TCON"]  # the write itself went through
    [rec] = _tag(tmp_path / "lib", tmp_path / "r.csv", write=True)
    assert rec["status"] == "written" and rec["previous"] == {"TCON": None, "TXXX:GENRESCOPE": None}
    main(["tag", "--undo", str(tmp_path / "r.csv")])
    assert T.read_snapshot(p)[1] == {"TCON": None, "TXXX:GENRESCOPE": None}


def test_file_vanishing_mid_run_is_reported_and_the_run_goes_on(tmp_path, capsys):
    files = make_library(tmp_path / "lib", formats=("flac", "mp3", "ogg"))
    CountingPredictor.vanish = str(files[-1])
    rc = run_tag([str(tmp_path / "lib"), "--report", str(tmp_path / "r.csv"), "--write", "-j", "1"], CountingPredictor)
    recs = {r["path"]: r for r in R.read(tmp_path / "r.csv")}
    assert rc == 1
    assert recs[str(files[-1])]["status"] == "failed" and str(files[-1]) in recs[str(files[-1])]["error"]
    assert [recs[str(f)]["status"] for f in files[:-1]] == ["written", "written"]
    err = capsys.readouterr().err
    assert "Traceback" not in err and str(files[-1]) in err


def test_not_audio_and_broken_files_fail_cleanly(tmp_path, capsys):
    lib = tmp_path / "lib"
    write_track(lib / "ok.flac", "flac")
    (lib / "notes.mp3").write_text("shopping list")
    good = write_track(tmp_path / "t.flac", "flac").read_bytes()
    (lib / "cut.flac").write_bytes(good[:300])
    rc = run_tag([str(lib), "--report", str(tmp_path / "r.jsonl"), "-j", "1"], CountingPredictor)
    recs = {Path(r["path"]).name: r for r in R.read(tmp_path / "r.jsonl")}
    assert rc == 1 and recs["ok.flac"]["status"] == "would-write"
    assert recs["notes.mp3"]["status"] == "failed" and "notes.mp3" in recs["notes.mp3"]["error"]
    assert recs["cut.flac"]["status"] == "failed"
    assert "Traceback" not in capsys.readouterr().err


def test_cli_options_are_checked(tmp_path, capsys):
    write_track(tmp_path / "a.flac", "flac")
    assert main(["tag", str(tmp_path), "--model", "no-such-model", "-j", "2", "--report",
                 str(tmp_path / "r.csv")]) == 2
    assert "no-such-model" in capsys.readouterr().err
    assert main(["tag", str(tmp_path), "--top", "0"]) == 2
    assert main(["tag", str(tmp_path), "--min-confidence", "2"]) == 2
    assert main(["tag", "--undo", str(tmp_path / "nope.csv")]) == 2
    assert "nope.csv" in capsys.readouterr().err


def test_worker_processes_give_the_one_process_report(tmp_path):
    make_library(tmp_path / "lib", per_format=2)
    one = _tag(tmp_path / "lib", tmp_path / "one.csv", FakePredictor)
    two = _tag(tmp_path / "lib", tmp_path / "two.csv", FakePredictor, jobs=2)
    assert (tmp_path / "one.csv").read_text() == (tmp_path / "two.csv").read_text()
    assert len(one) == len(two) == 10


def test_a_dying_worker_has_its_files_retried(tmp_path, monkeypatch):
    monkeypatch.setenv("GENRESCOPE_TEST_MARKER", str(tmp_path / "marker"))
    make_library(tmp_path / "lib", formats=("flac", "ogg", "mp3"), per_format=2)
    _tag(tmp_path / "lib", tmp_path / "two.csv", DyingPredictor, jobs=2)
    assert (tmp_path / "marker").exists()  # a worker really died
    _tag(tmp_path / "lib", tmp_path / "one.csv", FakePredictor)
    assert (tmp_path / "one.csv").read_text() == (tmp_path / "two.csv").read_text()


def test_a_write_invalidates_other_jobs_records(tmp_path):
    """A rewrite keeps the mtime (and ID3 padding often the size): a dry run journaled
    before the write must not be taken as still valid after it."""
    make_library(tmp_path / "lib", formats=("mp3", "flac"))
    assert {r["status"] for r in _tag(tmp_path / "lib", tmp_path / "r.csv")} == {"would-write"}
    _tag(tmp_path / "lib", tmp_path / "r.csv", write=True)
    assert {r["status"] for r in _tag(tmp_path / "lib", tmp_path / "r.csv")} == {"unchanged"}
