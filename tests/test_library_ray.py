"""`genrescope tag --engine ray`: a local Ray with 2 workers, one of them killed mid-run,
gives the report of the one-process run. Skipped when Ray (the `ray` extra) is absent."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers.library import DyingPredictor, FakePredictor, make_library, run_tag

ray = pytest.importorskip("ray")
HERE = Path(__file__).resolve().parent


@pytest.mark.slow
def test_ray_with_a_killed_worker_gives_the_one_process_report(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("GENRESCOPE_TEST_MARKER", str(tmp_path / "marker"))
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    lib = tmp_path / "lib"
    make_library(lib, per_format=2)
    assert run_tag([str(lib), "--report", str(tmp_path / "one.jsonl"), "-j", "1"], FakePredictor) == 0
    # the same job on Ray; the worker that meets t1.* first kills itself (once); the workers find
    # helpers.library through PYTHONPATH, which the engine passes on to them
    rc = run_tag([str(lib), "--report", str(tmp_path / "ray.jsonl"), "--engine", "ray", "-j", "2", "--no-progress"],
                 DyingPredictor)
    assert rc == 0
    assert (tmp_path / "marker").exists()  # a worker really died mid-run
    assert not ray.is_initialized()  # the local cluster it started is shut down
    assert (tmp_path / "ray.jsonl").read_text() == (tmp_path / "one.jsonl").read_text()
