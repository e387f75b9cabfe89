"""SIGKILL in the middle of `genrescope tag --write`'s file rewrites: every file still decodes
to the same samples with the same audio bytes, its tags are either the old or the new ones,
and the rerun of the same job finishes the library with a report that undoes everything.

The run is a forked child of the test (no interpreter start-up to wait for) with a fake
predictor that only reads headers. The child kills itself from a hook in the write path, at
a random rewrite and a random stage of it (copy made, copy edited, copy synced, copy renamed
over the original), so where the kills land does not depend on the machine's load.
"""
from __future__ import annotations

import os
import random
import shutil
import signal

import numpy as np
import pytest

from genrescope.library import report as R
from genrescope.library import tags as T
from genrescope.library.tag_run import tag_library
from genrescope.library.core import TagOptions
from genrescope.library.safe_write import TMP_SUFFIX
from genrescope.library.undo import undo
from helpers.library import FakePredictor, add_user_tags, audio_bytes, decoded, make_library

KILLS = 60

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")


class HeaderOnly(FakePredictor):
    """The fake's genres, from the header alone: the run's time goes into the writes."""

    def predict(self, path, offset=None, duration=None):
        from genrescope.audio.decode import audio_info

        info = audio_info(path)
        return self.ranking(path, info.frames / info.sr)


#: where in a rewrite the child kills itself; the first three leave the half-made copy behind
STAGES = ("copied", "edited", "synced", "replaced")


def _arm(rewrite_no: int, stage: str) -> None:
    """In the child: SIGKILL this process at ``stage`` of its ``rewrite_no``-th file rewrite."""
    from genrescope.library import safe_write

    count = {"n": -1}

    def die_at(name: str) -> None:
        if count["n"] == rewrite_no and stage == name:
            os.kill(os.getpid(), signal.SIGKILL)

    def hooked(real, before: str | None = None, after: str | None = None, counts: bool = False):
        def call(*a, **kw):
            if before:
                die_at(before)
            out = real(*a, **kw)
            if counts:
                count["n"] += 1
            if after:
                die_at(after)
            return out
        return call

    # rewrite(): copyfile, edit, chmod, chown, fsync, utime, replace (the module's own os and shutil)
    safe_write.shutil.copyfile = hooked(shutil.copyfile, counts=True, after="copied")
    safe_write.os.chmod = hooked(os.chmod, before="edited")
    safe_write.os.utime = hooked(os.utime, before="synced")
    safe_write.os.replace = hooked(os.replace, after="replaced")


def _child_run(lib, report, kill_at: tuple[int, str] | None = None) -> int:
    """Fork a child that runs the whole job (killing itself at ``kill_at``); returns its pid."""
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        if kill_at is not None:
            _arm(*kill_at)
        code = 0
        try:
            tag_library([str(lib)], TagOptions(model="fake", write=True, top=2), report_path=str(report),
                        predictor_factory=HeaderOnly)
        except BaseException:  # noqa: BLE001 - any failure is the child's exit code
            code = 1
        os._exit(code)
    return pid


def _state(lib):
    return {p.relative_to(lib): p for p in sorted(lib.rglob("*")) if p.is_file() and not p.name.endswith(TMP_SUFFIX)}


@pytest.mark.slow
def test_sigkill_at_random_points_never_corrupts(tmp_path):
    orig = tmp_path / "orig"
    files = make_library(orig, per_format=2, seconds=1.0)
    add_user_tags(files[0], genre="Polka")
    truth = {p.relative_to(orig): (decoded(p), audio_bytes(p), T.read_snapshot(p)[1]) for p in files}
    # the tags every file has after a complete run
    ref = tmp_path / "ref"
    shutil.copytree(orig, ref)
    tag_library([str(ref)], TagOptions(model="fake", write=True, top=2), report_path=str(tmp_path / "ref.csv"),
                predictor_factory=HeaderOnly)
    final = {rel: T.read_snapshot(p)[1] for rel, p in _state(ref).items()}
    assert all(final[rel] != truth[rel][2] for rel in truth)
    rng = random.Random(13)
    lib, report = tmp_path / "lib", tmp_path / "lib.csv"
    shutil.copytree(orig, lib)
    kills = mid_write = completed = 0
    left = len(truth)  # files not yet in their final state: the kill lands within the work left
    rounds = 0
    while kills < KILLS and rounds < 10 * KILLS:  # a round ends in a kill or a finished run
        rounds += 1
        # one rewrite past the work left: the run finishes now and then, and its report is checked
        kill_at = (rng.randrange(left + 1), rng.choice(STAGES))
        _, status = os.waitpid(_child_run(lib, report, kill_at), 0)
        killed = os.WIFSIGNALED(status)
        kills += killed
        copies = any(p.name.endswith(TMP_SUFFIX) for p in lib.rglob("*"))
        assert copies == (killed and kill_at[1] in STAGES[:3]), (kill_at, copies)
        mid_write += copies
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
    print(f"{kills} SIGKILLs, {mid_write} left a half-made copy behind, {completed} runs completed")
    assert kills >= KILLS and completed >= 1
    assert mid_write >= KILLS // 4  # about 3 in 4 of the kills land before the rename
