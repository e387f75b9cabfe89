"""The feature cache, parallel extraction and ``genrescope features``, on generated audio."""
from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
import types

import numpy as np
import pytest

from genrescope.features import cache as gcache
from genrescope.audio.decode import load_audio
from genrescope.features.cache import FeatureCache, content_hash, extract_many
from genrescope.commands import main
from genrescope.config import FeatureConfig
from genrescope.errors import GenrescopeError
from genrescope.features.spectrogram import compute

CFG = FeatureConfig()


def entries(root) -> list:
    return sorted(p for p in root.rglob("*.npy"))


def assert_same_features(got, want):
    """For entries written by extract_many's workers, which run one BLAS thread: OpenBLAS's
    float32 matmul rounds differently with 1 and 2 threads, so the arrays can differ from an
    in-process compute() by an ulp (~1e-7 relative)."""
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-4)


@pytest.fixture
def songs(write_audio):
    """Four short files in three formats, different content each."""
    return [write_audio("a/one.wav", 2.0, seed=1), write_audio("a/two.flac", 1.5, seed=2),
            write_audio("b/three.mp3", 2.0, sr=44100, channels=2, seed=3),
            write_audio("b/four.wav", 1.0, sr=16000, seed=4)]


@pytest.mark.parametrize("kind", ["log_mel", "mfcc", "stft"])
@pytest.mark.parametrize("name,sr,channels", [("x.wav", 22050, 1), ("x.flac", 44100, 1), ("x.mp3", 44100, 2)])
def test_cached_array_equals_compute(write_audio, tmp_path, kind, name, sr, channels):
    path = write_audio(name, 1.5, sr=sr, channels=channels)
    c = FeatureCache(tmp_path / "cache", CFG, kind)
    got = c.get(path)
    want = compute(load_audio(path, sr=CFG.sr), CFG, kind)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    assert c.has(path) and c.path_for(path).is_file()
    np.testing.assert_array_equal(c.get(path), want)  # read back from disk


def test_nothing_created_until_needed(tmp_path, monkeypatch):
    monkeypatch.setenv("GENRESCOPE_CACHE", str(tmp_path / "env-cache"))
    c = FeatureCache(None, CFG)
    assert c.root == tmp_path / "env-cache"
    assert not (tmp_path / "env-cache").exists()
    monkeypatch.delenv("GENRESCOPE_CACHE")
    assert gcache.default_cache_root() == gcache.Path.home() / ".cache" / "genrescope" / "features"


def test_second_run_does_no_work(songs, tmp_path):
    c = FeatureCache(tmp_path / "cache", CFG)
    r1 = extract_many(songs, c, jobs=1, progress=False)
    assert (r1.done, r1.cached, r1.failed) == (4, 0, [])
    assert r1.audio_s == pytest.approx(2.0 + 1.5 + 2.0 + 1.0, abs=0.01)
    r2 = extract_many(songs, c, jobs=1, progress=False)
    assert (r2.done, r2.cached, r2.failed, r2.audio_s) == (0, 4, [], 0.0)
    assert len(entries(c.dir)) == 4
    assert r1.entries == r2.entries == {str(s): c.path_for(s) for s in songs}
    assert json.loads((c.dir / "config.json").read_text())["feature_config"] == CFG.to_dict()


def test_content_change_reextracts_rename_does_not(write_audio, tmp_path):
    path = write_audio("song.wav", 1.0, seed=1)
    c = FeatureCache(tmp_path / "cache", CFG)
    assert extract_many([path], c, jobs=1, progress=False).done == 1
    renamed = path.rename(path.with_name("renamed.wav"))
    r = extract_many([renamed], c, jobs=1, progress=False)
    assert (r.done, r.cached) == (0, 1)
    old_entry = c.path_for(renamed)
    write_audio("renamed.wav", 1.0, seed=2)  # same name, new content
    r = extract_many([renamed], c, jobs=1, progress=False)
    assert (r.done, r.cached) == (1, 0)
    assert c.path_for(renamed) != old_entry
    assert_same_features(c.get(renamed), compute(load_audio(renamed), CFG))


def test_identical_files_are_extracted_once(write_audio, tmp_path):
    a = write_audio("a.wav", 1.0, seed=5)
    b = tmp_path / "copy.wav"
    b.write_bytes(a.read_bytes())
    r = extract_many([a, b, a], FeatureCache(tmp_path / "cache", CFG), jobs=1, progress=False)
    assert (r.done, r.cached, r.failed) == (1, 2, [])
    assert r.entries[str(a)] == r.entries[str(b)]
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all" * 100)
    twin = tmp_path / "twin.wav"
    twin.write_bytes(bad.read_bytes())
    r = extract_many([bad, twin], FeatureCache(tmp_path / "cache", CFG), jobs=1, progress=False)
    assert (r.done, r.cached, sorted(p for p, _ in r.failed)) == (0, 0, [str(bad), str(twin)])


def test_config_and_kind_change_the_key(write_audio, tmp_path):
    path = write_audio("song.wav", 1.0)
    base = FeatureCache(tmp_path, CFG, "log_mel")
    other = FeatureCache(tmp_path, CFG.replace(n_mels=64), "log_mel")
    mfcc = FeatureCache(tmp_path, CFG, "mfcc")
    assert len({base.dir, other.dir, mfcc.dir}) == 3
    assert base.dir == FeatureCache(tmp_path, FeatureConfig(), "log-mel").dir  # equal configs share
    assert base.get(path).shape[0] == 128 and other.get(path).shape[0] == 64 and mfcc.get(path).shape[0] == 20
    with pytest.raises(GenrescopeError):
        FeatureCache(tmp_path, CFG, "chroma")


def test_content_hash_is_blake2b_of_bytes(tmp_path):
    import hashlib

    p = tmp_path / "f.bin"
    data = os.urandom(3 * (1 << 20) + 17)  # spans several read chunks
    p.write_bytes(data)
    assert content_hash(p) == hashlib.blake2b(data, digest_size=16).hexdigest()


@pytest.mark.parametrize("jobs", [1, 2])
def test_bad_files_are_reported_and_skipped(songs, tmp_path, jobs):
    noise = tmp_path / "noise.wav"
    noise.write_bytes(np.random.default_rng(0).bytes(20000))
    truncated = tmp_path / "truncated.flac"
    truncated.write_bytes(songs[1].read_bytes()[:300])  # header and the start of the first frame
    empty = tmp_path / "empty.flac"
    empty.touch()
    missing = tmp_path / "missing.wav"
    bad = [noise, truncated, empty, missing]
    c = FeatureCache(tmp_path / "cache", CFG)
    r = extract_many(bad[:2] + songs + bad[2:], c, jobs=jobs, progress=False)
    assert r.done == len(songs)
    assert sorted(p for p, _ in r.failed) == sorted(map(str, bad))
    for path, msg in r.failed:
        assert path in msg
    assert all(c.has(s) for s in songs)
    assert len(entries(c.dir)) == len(songs)


def test_atomic_write_leaves_no_temp_files(songs, tmp_path, monkeypatch):
    c = FeatureCache(tmp_path / "cache", CFG)
    extract_many(songs, c, jobs=1, progress=False)
    assert not [p for p in c.root.rglob("*") if p.name.endswith(".tmp")]

    def broken_save(f, arr, **kw):  # dies half way through writing
        f.write(b"\x93NUMPY partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", broken_save)
    c2 = FeatureCache(tmp_path / "cache2", CFG)
    with pytest.raises(KeyboardInterrupt):
        c2.get(songs[0])
    assert not c2.has(songs[0])
    assert not [p for p in c2.root.rglob("*") if p.is_file() and p.suffix != ".json"]


def test_resume_after_a_killed_run(songs, tmp_path):
    c = FeatureCache(tmp_path / "cache", CFG)
    first = extract_many(songs[:2], c, jobs=1, progress=False)  # the run "killed" half way
    assert first.done == 2
    entry = c.path_for(songs[2])
    entry.parent.mkdir(parents=True, exist_ok=True)
    stale = entry.parent / f".{entry.name}.abc123.tmp"  # what a kill during np.save leaves
    stale.write_bytes(b"\x93NUMPY half")
    old = time.time() - 2 * gcache.STALE_TEMP_S
    os.utime(stale, (old, old))
    fresh = entry.parent / f".{entry.name}.def456.tmp"  # maybe another run writing right now
    fresh.write_bytes(b"\x93NUMPY half")
    r = extract_many(songs, c, jobs=1, progress=False)
    assert (r.done, r.cached, r.failed) == (2, 2, [])
    assert not stale.exists() and fresh.exists()
    assert_same_features(np.load(entry), compute(load_audio(songs[2]), CFG))


def test_damaged_entry_is_recomputed(songs, tmp_path):
    c = FeatureCache(tmp_path / "cache", CFG)
    want = c.get(songs[0])
    c.path_for(songs[0]).write_bytes(b"garbage")
    np.testing.assert_array_equal(c.get(songs[0]), want)


def test_two_jobs_give_the_same_arrays_as_one(songs, tmp_path):
    """Bit for bit: -j 1 runs the same one-BLAS-thread worker as -j 2."""
    c1 = FeatureCache(tmp_path / "j1", CFG, "mfcc")
    c2 = FeatureCache(tmp_path / "j2", CFG, "mfcc")
    r1 = extract_many(songs, c1, jobs=1, progress=False)
    r2 = extract_many(songs, c2, jobs=2, progress=False)
    assert r1.done == r2.done == len(songs)
    assert r1.audio_s == pytest.approx(r2.audio_s)
    for s in songs:
        np.testing.assert_array_equal(np.load(c1.path_for(s)), np.load(c2.path_for(s)))


def test_progress_counter_without_tqdm(songs, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now raises ImportError
    extract_many(songs, FeatureCache(tmp_path / "cache", CFG), jobs=1, progress=True)
    assert "4/4 files" in capsys.readouterr().err


# ---------------------------------------------------------------- the CLI
def test_cli_csv_summary_rows(songs, tmp_path, capsys):
    noise = tmp_path / "a" / "noise.wav"
    noise.write_bytes(b"RIFF" + os.urandom(5000))
    code = main(["features", str(tmp_path / "a"), "--set", "log-mel", "--format", "csv", "-j", "1"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "noise.wav" in err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["filename"] for r in rows] == ["one.wav", "two.flac"]  # sorted, failures left out
    header = out.splitlines()[0].split(",")
    assert header[:5] == ["filename", "n_frames", "duration_s", "mel0_mean", "mel0_std"]
    assert len(header) == 3 + 2 * CFG.n_mels
    lm = compute(load_audio(songs[0]), CFG)
    assert int(rows[0]["n_frames"]) == lm.shape[1]
    assert float(rows[0]["duration_s"]) == pytest.approx(2.0, abs=1e-3)
    assert float(rows[0]["mel5_mean"]) == pytest.approx(lm[5].mean(), abs=1e-3)
    assert float(rows[0]["mel5_std"]) == pytest.approx(lm[5].std(), abs=1e-3)
    assert not (tmp_path / "cache").exists()


def test_cli_json_rows_parallel(songs, capsys):
    code = main(["features", *map(str, songs), "--set", "mfcc", "--format", "json", "-j", "2"])
    out, _ = capsys.readouterr()
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["filename"] for r in rows] == [s.name for s in songs]  # input order kept
    assert "mfcc19_std" in rows[0] and "mfcc20_mean" not in rows[0]


def test_cli_fills_the_cache(songs, tmp_path, capsys):
    root = tmp_path / "cache"
    argv = ["features", str(tmp_path / "a"), str(tmp_path / "b"), "--cache", str(root), "-j", "1", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "4 extracted, 0 already cached, 0 failed" in out and "x real time" in out
    assert len(entries(root)) == 4
    assert main(argv) == 0
    assert "0 extracted, 4 already cached, 0 failed" in capsys.readouterr().out


def test_cli_reports_failures_in_cache_mode(songs, tmp_path, capsys):
    bad = tmp_path / "a" / "bad.mp3"
    bad.write_bytes(os.urandom(4000))
    code = main(["features", str(tmp_path / "a"), "--cache", str(tmp_path / "c"), "-j", "1", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "2 extracted, 0 already cached, 1 failed" in out
    assert str(bad) in err


def test_cli_errors(tmp_path, songs, capsys):
    assert main(["features", str(songs[0]), "--set", "gtzan-table"]) == 2
    assert "--format" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["features", str(tmp_path / "empty"), "--format", "csv"]) == 2
    assert "no audio files" in capsys.readouterr().err


def test_cli_gtzan_table_with_a_stub(songs, monkeypatch, capsys):
    """The row layout, independent of the real gtzan_table module."""
    calls = []

    def extract_row(path):
        calls.append(str(path))
        return {"length": 44100, "tempo": 120.0, "mfcc1_mean": -100.5, "unused": 1.0}

    stub = types.ModuleType("genrescope.features.gtzan_table")
    stub.COLUMNS = ["length", "tempo", "mfcc1_mean"]
    stub.extract_row = extract_row
    monkeypatch.setitem(sys.modules, "genrescope.features.gtzan_table", stub)
    import genrescope.features

    monkeypatch.setattr(genrescope.features, "gtzan_table", stub, raising=False)
    code = main(["features", str(songs[0]), str(songs[1]), "--set", "gtzan-table", "--format", "csv", "-j", "1"])
    out = capsys.readouterr().out
    assert code == 0 and calls == [str(songs[0]), str(songs[1])]
    assert out.splitlines() == ["filename,length,tempo,mfcc1_mean", "one.wav,44100,120.0,-100.5",
                                "two.flac,44100,120.0,-100.5"]


def test_cli_gtzan_table_real(write_audio, capsys):
    gt = pytest.importorskip("genrescope.features.gtzan_table")
    path = write_audio("clip.wav", 3.0)
    assert main(["features", str(path), "--set", "gtzan-table", "--format", "csv", "-j", "1"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["filename"] + [c for c in gt.COLUMNS if c != "filename"]
    assert len(rows) == 2 and rows[1][0] == "clip.wav" and len(rows[1]) == len(rows[0])


def test_worker_reports_unexpected_errors(songs, tmp_path, monkeypatch):
    """A bug or an odd file is a failed file in the report, not the end of a long run."""
    def broken(*args, **kwargs):
        raise ValueError("boom")

    monkeypatch.setattr(gcache, "compute_file", broken)
    c = FeatureCache(tmp_path / "cache", CFG)
    seconds, err, _ = gcache._extract_one(str(songs[0]), c.path_for(songs[0]), c)
    assert seconds == 0.0 and str(songs[0]) in err and "ValueError: boom" in err
    assert not c.has(songs[0])
