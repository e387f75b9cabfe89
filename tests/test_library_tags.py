"""`genrescope tag` writes: the audio is never touched, existing genres are kept unless
--overwrite, --undo restores exactly, and rewrites are atomic and keep mode and mtime."""
from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from genrescope.library import tags as T
from genrescope.library.tag_run import tag_library
from genrescope.library.core import TagOptions, choose
from genrescope.library.safe_write import rewrite, temp_path
from genrescope.library.undo import undo
from helpers.library import (FORMATS, FakePredictor, add_user_tags, all_tags, audio_bytes, decoded, make_library,
                             ogg_granules, write_track)

pytest.importorskip("mutagen")


def _run(root, tmp_path, name="r.jsonl", **opts):
    o = TagOptions(**{"model": "fake", **opts})
    return tag_library([str(root)], o, report_path=str(tmp_path / name), predictor_factory=FakePredictor)


@pytest.mark.parametrize("fmt", FORMATS)
def test_write_never_touches_audio(tmp_path, fmt):
    """Decoded samples and the audio frames' bytes are identical after a tag write."""
    p = write_track(tmp_path / "lib" / f"song.{fmt}", fmt, seconds=3.0)
    add_user_tags(p)
    samples, frames, others = decoded(p), audio_bytes(p), all_tags(p)
    granules = ogg_granules(p) if fmt in ("ogg", "opus") else None
    [rec] = _run(tmp_path / "lib", tmp_path, write=True, top=2)
    assert rec["status"] == "written", rec
    after = decoded(p)
    assert after.shape == samples.shape and np.array_equal(after, samples)
    assert audio_bytes(p) == frames
    if granules is not None:
        assert ogg_granules(p) == granules
    kind, snap = T.read_snapshot(p)
    top2 = [g for g, _ in rec["genres"][:2]]
    assert snap[T.genre_key(kind)] == top2
    scores, model = T.parse_scores(snap[T.score_key(kind)][0])
    assert model == "fake-tiny" and [g for g, _ in scores] == top2
    for key, value in others.items():  # the user's artist and title are untouched
        if key.lower() not in {k.lower() for k in T.keys(kind)}:
            assert all_tags(p)[key] == value


def test_dry_run_writes_nothing_and_says_what_would_change(tmp_path):
    files = make_library(tmp_path / "lib")
    before = {p: p.read_bytes() for p in files}
    recs = _run(tmp_path / "lib", tmp_path)
    assert {r["status"] for r in recs} == {"would-write"}
    assert all(p.read_bytes() == b for p, b in before.items())
    for r in recs:
        kind = T.tag_kind(r["path"])
        assert r["written"][T.genre_key(kind)] == [r["genres"][0][0]]
        assert r["previous"][T.genre_key(kind)] is None


def test_existing_genre_kept_unless_overwrite(tmp_path):
    p = write_track(tmp_path / "lib" / "a.flac", "flac")
    add_user_tags(p, genre="Polka")
    [rec] = _run(tmp_path / "lib", tmp_path, write=True)
    assert T.read_snapshot(p)[1]["genre"] == ["Polka"]
    assert T.read_snapshot(p)[1]["genrescope"]  # the scores are still stored
    assert "kept" in rec["note"]
    [rec] = _run(tmp_path / "lib", tmp_path, name="r2.csv", write=True, overwrite=True)
    assert T.read_snapshot(p)[1]["genre"] == [rec["genres"][0][0]]
    assert rec["previous"]["genre"] == ["Polka"]


def test_own_genre_is_updated_without_overwrite(tmp_path):
    """A genre a previous run wrote is ours to replace (e.g. with a different --top)."""
    p = write_track(tmp_path / "lib" / "a.ogg", "ogg")
    _run(tmp_path / "lib", tmp_path, write=True, top=1)
    [rec] = _run(tmp_path / "lib", tmp_path, name="r2.jsonl", write=True, top=2)
    assert T.read_snapshot(p)[1]["genre"] == [g for g, _ in rec["genres"][:2]]


def test_undo_restores_every_format_exactly(tmp_path):
    files = make_library(tmp_path / "lib", per_format=2)
    add_user_tags(files[1], genre="Krautrock")
    add_user_tags(files[2], genre="Zydeco")
    tags0 = {p: all_tags(p) for p in files}
    audio0 = {p: audio_bytes(p) for p in files}
    _run(tmp_path / "lib", tmp_path, name="r1.csv", write=True, top=2)
    recs = _run(tmp_path / "lib", tmp_path, name="r2.jsonl", write=True, overwrite=True, top=3)
    assert {r["status"] for r in recs} == {"written"}
    tags1 = {p: all_tags(p) for p in files}
    restored, errors = undo(tmp_path / "r2.jsonl")
    assert (restored, errors) == (len(files), [])
    assert {p: all_tags(p) for p in files} != tags0  # back to after run 1, not to the start
    restored, errors = undo(tmp_path / "r1.csv")
    assert errors == [] and {p: all_tags(p) for p in files} == tags0
    assert {p: audio_bytes(p) for p in files} == audio0
    assert tags1 != tags0


def test_undo_leaves_files_edited_since_alone(tmp_path):
    p = write_track(tmp_path / "lib" / "a.mp3", "mp3")
    _run(tmp_path / "lib", tmp_path, write=True)
    rewrite(p, lambda tmp: T.apply_snapshot(tmp, "id3", {"TCON": ["Edited"]}))
    restored, errors = undo(tmp_path / "r.jsonl")
    assert restored == 0 and "changed since the run" in errors[0] and str(p) in errors[0]
    assert T.read_snapshot(p)[1]["TCON"] == ["Edited"]


def test_top_and_min_confidence():
    ranking = [["a", 0.5], ["b", 0.3], ["c", 0.2]]
    assert choose(ranking, 2, 0.0) == (["a", "b"], [("a", 0.5), ("b", 0.3)])
    assert choose(ranking, 3, 0.25) == (["a", "b"], [("a", 0.5), ("b", 0.3), ("c", 0.2)])
    assert choose(ranking, 1, 0.9) == ([], [("a", 0.5)])


def test_scores_field_round_trip():
    text = T.format_scores([("hip-hop", 0.623), ("r&b", 0.21)], "some-model")
    assert text == "hip-hop:0.62;r&b:0.21;model=some-model"
    assert T.parse_scores(text) == ([("hip-hop", 0.62), ("r&b", 0.21)], "some-model")


def test_below_min_confidence_writes_scores_only(tmp_path):
    p = write_track(tmp_path / "lib" / "a.opus", "opus")
    [rec] = _run(tmp_path / "lib", tmp_path, write=True, min_confidence=0.999)
    snap = T.read_snapshot(p)[1]
    assert snap["genre"] is None and snap["genrescope"] and "min-confidence" in rec["note"]


def test_rewrite_keeps_mode_and_mtime(tmp_path):
    p = write_track(tmp_path / "a.flac", "flac")
    os.chmod(p, 0o640)
    os.utime(p, ns=(1_500_000_000_000_000_000, 1_400_000_000_123_456_789))
    st = rewrite(p, lambda tmp: T.apply_snapshot(tmp, "vorbis", {"genre": ["x"]}))
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert st.st_mtime_ns == 1_400_000_000_123_456_789
    assert T.read_snapshot(p)[1]["genre"] == ["x"]


def test_rewrite_leaves_the_file_alone_when_the_edit_fails(tmp_path):
    p = write_track(tmp_path / "a.mp3", "mp3")
    before = p.read_bytes()

    def boom(tmp):
        tmp.write_bytes(b"half")
        raise OSError(5, "disk on fire")

    with pytest.raises(Exception, match="disk on fire"):
        rewrite(p, boom)
    assert p.read_bytes() == before and not temp_path(p).exists()


def test_symlinked_file_stays_a_link(tmp_path):
    real = write_track(tmp_path / "store" / "a.flac", "flac")
    (tmp_path / "lib").mkdir()
    link = tmp_path / "lib" / "a.flac"
    link.symlink_to(real)
    [rec] = _run(tmp_path / "lib", tmp_path, write=True)
    assert rec["status"] == "written" and link.is_symlink()
    assert T.read_snapshot(real)[1]["genre"] == [rec["genres"][0][0]]


def test_read_only_and_untaggable_files_are_reported(tmp_path):
    ro = write_track(tmp_path / "lib" / "ro.mp3", "mp3")
    write_track(tmp_path / "lib" / "ok.flac", "flac")
    write_track(tmp_path / "lib" / "plain.wav", "wav")
    os.chmod(ro, 0o444)
    before = ro.read_bytes()
    recs = {os.path.basename(r["path"]): r for r in _run(tmp_path / "lib", tmp_path, write=True)}
    assert recs["ro.mp3"]["status"] == "failed" and "read-only" in recs["ro.mp3"]["error"]
    assert str(ro) in recs["ro.mp3"]["error"] and ro.read_bytes() == before
    assert recs["ok.flac"]["status"] == "written"
    assert recs["plain.wav"]["status"] == "no-tags"


@pytest.mark.parametrize("fmt", FORMATS)
def test_audio_bytes_finds_the_audio(tmp_path, fmt):
    """The helper the tests above rely on must see the audio: most of the file, and it changes with the signal."""
    a = write_track(tmp_path / f"a.{fmt}", fmt, seed=1)
    b = write_track(tmp_path / f"b.{fmt}", fmt, seed=2)
    assert len(audio_bytes(a)) > 0.5 * a.stat().st_size
    assert audio_bytes(a) != audio_bytes(b)
