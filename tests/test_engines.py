"""The engines under `genrescope embed` and `genrescope features`: `-j 2` and a local 2-worker
Ray give the output files of the one-process run (bytes, or the same rows in the same
order), bad files are reported and skipped under every engine; and the engines' own
contract (input order back, duplicates, extra arguments, errors). Ray tests skip without
Ray; they share one local cluster."""
from __future__ import annotations

import filecmp
import json
import os
from pathlib import Path

import pytest

from genrescope.testing import synth_music
from genrescope.commands import main
from genrescope.engines import in_order, map_files
from genrescope.errors import GenrescopeError

HERE = Path(__file__).resolve().parent
BROKEN = "broken.wav"


class ScaleTask:
    """A picklable task for the engine contract: the file's size times a factor, offset by an argument."""

    isolate = True

    def __init__(self, factor: int):
        self.factor = factor

    def open(self, threads):
        def fn(path, offset=0):
            if Path(path).name == BROKEN:
                raise GenrescopeError(f"{path}: broken on purpose")
            return os.path.getsize(path) * self.factor + offset

        return fn


@pytest.fixture(scope="module")
def music(tmp_path_factory) -> Path:
    """Two genre folders of generated 5-8 s wavs (a folder-per-genre dataset) and a file that is not audio."""
    import soundfile as sf

    root = tmp_path_factory.mktemp("engines") / "ds"
    for style, (tempo, f0) in {"low": (70, 110.0), "high": (170, 880.0)}.items():
        (root / style).mkdir(parents=True)
        for i in range(2):
            y = synth_music(5.0 + 3 * i, 22050, seed=10 * i + len(style), tempo=tempo, f0=f0)
            sf.write(str(root / style / f"{style}{i}.wav"), y, 22050, subtype="PCM_16")
    (root / "high" / BROKEN).write_bytes(b"RIFF" + os.urandom(3000))
    return root


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray with 2 CPUs for the module: the commands find it running and leave it up."""
    ray = pytest.importorskip("ray")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_USAGE_STATS_ENABLED", "0")
        mp.setenv("PYTHONPATH", str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", ""))  # ScaleTask's module
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        yield ray
        ray.shutdown()


def _features(music: Path, out: Path, *engine: str) -> tuple[int, int, str]:
    """`features --format csv` (stdout into out/table.csv) and cache mode (into out/cache)."""
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc_table = main(["features", str(music), "--set", "mfcc", "--format", "csv", *engine])
    (out / "table.csv").write_text(buf.getvalue())
    with contextlib.redirect_stdout(io.StringIO()):
        rc_cache = main(["features", str(music), "--cache", str(out / "cache"), "--no-progress", *engine])
    return rc_table, rc_cache, buf.getvalue()


def _embed(music: Path, out: Path, *engine: str) -> int:
    return main(["embed", str(music), "--out", str(out / "emb"), "--cache", str(out / "cache"), "--no-progress",
                 *engine])


def _same_tree(a: Path, b: Path) -> list[str]:
    """Relative paths of every file under a; fails unless b has the same files with the same bytes."""
    files = sorted(str(p.relative_to(a)) for p in a.rglob("*") if p.is_file())
    assert files == sorted(str(p.relative_to(b)) for p in b.rglob("*") if p.is_file())
    _, mismatch, errors = filecmp.cmpfiles(a, b, files, shallow=False)
    assert not mismatch and not errors, f"differ: {mismatch + errors}"
    return files


@pytest.fixture(scope="module")
def one_process(music, tmp_path_factory) -> Path:
    """The reference outputs: features and embed with -j 1."""
    out = tmp_path_factory.mktemp("j1")
    rc_table, rc_cache, table = _features(music, out, "-j", "1")
    assert (rc_table, rc_cache) == (1, 1)  # the broken file
    assert [r.split(",")[0] for r in table.splitlines()[1:]] == ["high0.wav", "high1.wav", "low0.wav", "low1.wav"]
    assert _embed(music, out, "-j", "1") == 1
    meta = json.loads((out / "emb" / "embeddings.json").read_text())
    assert meta["tracks"] == 4 and len(meta["failed"]) == 1 and BROKEN in meta["failed"][0]
    return out


@pytest.mark.parametrize("engine", [("-j", "2"), ("--engine", "ray", "-j", "2")], ids=["local-j2", "ray-2"])
@pytest.mark.slow
def test_features_and_embed_give_the_one_process_output(engine, music, one_process, tmp_path, capsys, request):
    if "ray" in engine:
        request.getfixturevalue("ray_cluster")
    assert _features(music, tmp_path, *engine)[:2] == (1, 1)
    assert _embed(music, tmp_path, *engine) == 1
    assert BROKEN in capsys.readouterr().err  # reported, and the rest goes on
    assert (tmp_path / "table.csv").read_text() == (one_process / "table.csv").read_text()
    entries = _same_tree(one_process / "cache", tmp_path / "cache")  # feature, log-mel and embedding entries
    assert sum(e.endswith(".npy") for e in entries) == 3 * 4
    assert len(_same_tree(one_process / "emb", tmp_path / "emb")) == 5  # npy, csv and json byte for byte


def _paths(music: Path) -> list[str]:
    """Every wav, the broken one among them, and one good file twice (two calls)."""
    files = sorted(str(p) for p in music.rglob("*.wav"))
    return files + [f for f in files if Path(f).name != BROKEN][:1]


def test_ray_engine_keeps_order_duplicates_and_arguments(music, ray_cluster):
    paths = _paths(music)
    args = [(i,) for i in range(len(paths))]
    got = list(in_order(map_files(paths, ScaleTask(3), engine="ray", jobs=2, args=args), len(paths)))
    assert [i for i, _, _ in got] == list(range(len(paths)))
    for (i, result, error), p in zip(got, paths):
        if Path(p).name == BROKEN:
            assert result is None and error == f"{p}: broken on purpose"
        else:
            assert error is None and result == os.path.getsize(p) * 3 + i
    assert ray_cluster.is_initialized()  # a cluster the run did not start is left running


@pytest.mark.parametrize("jobs", [1, 2])
def test_local_engine_keeps_order_duplicates_and_arguments(music, jobs):
    paths = _paths(music)
    got = {i: (r, e) for i, r, e in map_files(paths, ScaleTask(2), jobs=jobs, args=[(i,) for i in range(len(paths))])}
    assert sorted(got) == list(range(len(paths)))
    assert got[len(paths) - 1] == (os.path.getsize(paths[-1]) * 2 + len(paths) - 1, None)
    assert [e is not None for r, e in got.values()].count(True) == 1


def test_in_order_waits_for_the_earlier_ones():
    arrived = [(2, "c", None), (0, "a", None), (1, None, "bad"), (3, "d", None)]
    assert [i for i, _, _ in in_order(iter(arrived), 4)] == [0, 1, 2, 3]
    with pytest.raises(GenrescopeError, match="2 of 3 results never came back"):
        list(in_order(iter([(0, "a", None), (2, "c", None)]), 3))


def test_engine_options_are_checked(music, capsys):
    assert main(["features", str(music), "--format", "csv", "--engine", "local", "--address", "x:6379"]) == 2
    assert "--ray-address needs --engine ray" in capsys.readouterr().err
    with pytest.raises(GenrescopeError, match="expected local or ray"):
        map_files(["a"], ScaleTask(1), engine="spark")
    with pytest.raises(GenrescopeError, match="2 argument tuples for 1 paths"):
        map_files(["a"], ScaleTask(1), args=[(), ()])


def test_a_finished_local_run_leaves_no_pool_thread_behind(music):
    """Once every result is in, the pool's manager thread has ended: one still closing its pipe
    at interpreter exit made concurrent.futures' atexit hook print "Bad file descriptor"."""
    import threading

    def managers():
        return [t for t in threading.enumerate() if type(t).__name__ == "_ExecutorManagerThread" and t.is_alive()]

    before = set(managers())
    paths = _paths(music)
    assert len(list(map_files(paths, ScaleTask(2), jobs=2))) == len(paths)
    assert set(managers()) - before == set()
