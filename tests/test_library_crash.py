"""SIGKILL at random moments of `genrescope tag --write`: every file still decodes to the
same samples with the same audio bytes, its tags are either the old or the new ones, and
the rerun of the same job finishes the library with a report that undoes everything.

The run is a forked child of the test (no interpreter start-up to wait for) with a fake
predictor that only reads headers, so most of its time is spent rewriting files and the
kills land there: the test counts the kills that left a half-made copy behind.
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import time

import numpy as np
import pytest

from genrescope.library import report as R
from genrescope.library import tags as T
from genrescope.library.command import tag_library
from genrescope.library.core import PREDICTOR_HOOK, TagOptions
from genrescope.library.safe_write import TMP_SUFFIX
from genrescope.library.undo import undo
from test_library_support import FakePredictor, add_user_tags, audio_bytes, decoded, make_library

KILLS = 60

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")


class HeaderOnly(FakePredictor):
    """The fake's genres, from the header alone: the run's time goes into the writes."""

    def predict(self, path, offset=None, duration=None):
        from genrescope.audio.decode import audio_info

        info = audio_info(path)
        return self.ranking(path, info.frames / info.sr)


def _child_run(lib, report) -> int:
    """Fork a child that runs the whole job; returns its pid."""
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 0
        try:
            tag_library([str(lib)], TagOptions(model="fake", write=True, top=2), report_path=str(report))
        except BaseException:  # noqa: BLE001 - any failure is the child's exit code
            code = 1
        os._exit(code)
    return pid


def _timed_child(lib, report) -> float:
    t0 = time.perf_counter()
    os.waitpid(_child_run(lib, report), 0)
    return time.perf_counter() - t0


def _state(lib):
    return {p.relative_to(lib): p for p in sorted(lib.rglob("*")) if p.is_file() and not p.name.endswith(TMP_SUFFIX)}


def test_sigkill_at_random_points_never_corrupts(tmp_path, monkeypatch):
    monkeypatch.setenv(PREDICTOR_HOOK, "test_library_crash:HeaderOnly")
    orig = tmp_path / "orig"
    files = make_library(orig, per_format=2, seconds=1.0)
    add_user_tags(files[0], genre="Polka")
    truth = {p.relative_to(orig): (decoded(p), audio_bytes(p), T.read_snapshot(p)[1]) for p in files}
    # the tags every file has after a complete run
    ref = tmp_path / "ref"
    shutil.copytree(orig, ref)
    tag_library([str(ref)], TagOptions(model="fake", write=True, top=2), report_path=str(tmp_path / "ref.csv"))
    final = {rel: T.read_snapshot(p)[1] for rel, p in _state(ref).items()}
    assert all(final[rel] != truth[rel][2] for rel in truth)
    # how long a child takes for the whole job, and for a rerun with nothing left (the fixed cost)
    shutil.copytree(orig, tmp_path / "timed")
    full_s, fixed_s = (_timed_child(tmp_path / "timed", tmp_path / "timed.csv") for _ in range(2))

    rng = random.Random(13)
    lib, report = tmp_path / "lib", tmp_path / "lib.csv"
    shutil.copytree(orig, lib)
    kills = mid_write = completed = 0
    left = len(truth)  # files not yet in their final state: the kill lands within the work left
    rounds = 0
    while kills < KILLS and rounds < 10 * KILLS:  # a round ends in a kill or a finished run
        rounds += 1
        pid = _child_run(lib, report)
        time.sleep(rng.uniform(0.0, fixed_s + (full_s - fixed_s) * left / len(truth)))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        killed = os.WIFSIGNALED(status)
        kills += killed
        mid_write += any(p.name.endswith(TMP_SUFFIX) for p in lib.rglob("*"))
        current = _state(lib)
        assert set(current) == set(truth)
        for rel, p in current.items():
            samples, frames, tags0 = truth[rel]
            got = decoded(p)
            assert got.shape == samples.shape and np.array_equal(got, samples), rel
            assert audio_bytes(p) == frames, rel
            assert T.read_snapshot(p)[1] in (tags0, final[rel]), rel
        left = sum(T.read_snapshot(p)[1] != final[rel] for rel, p in current.items())
        if not killed:  # it finished: the report covers everything and undoes everything
            completed += 1
            assert os.WEXITSTATUS(status) == 0
            recs = R.read(report)
            assert sorted(r["path"] for r in recs) == sorted(str(p) for p in current.values())
            assert {r["status"] for r in recs} == {"written"}
            assert undo(report)[1] == []
            assert all(T.read_snapshot(p)[1] == truth[rel][2] for rel, p in current.items())
            shutil.rmtree(lib)
            shutil.copytree(orig, lib)
            for f in tmp_path.glob("lib.csv*"):
                f.unlink()
            left = len(truth)
    print(f"{kills} SIGKILLs, {mid_write} left a half-made copy behind, {completed} runs completed; "
          f"a full run takes {full_s:.2f} s, a rerun with nothing to do {fixed_s:.2f} s")
    assert kills >= KILLS
    assert mid_write >= 2  # the kills really hit the writes, not only start-up and reads
