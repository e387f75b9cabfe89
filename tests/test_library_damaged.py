"""`genrescope tag` on damaged files: their decode warnings reach the report and stderr, and a
file whose audio is much shorter than its header says is reported, not written (unless
--write-damaged)."""
from __future__ import annotations

from pathlib import Path

import pytest

from genrescope.library import report as R
from genrescope.library import tags as T
from helpers.library import FakePredictor, run_tag, write_track


class DecodingPredictor(FakePredictor):
    """The fake genres, with the decode warnings and the length in seconds as a real model gives them."""

    def predict(self, path, offset=None, duration=None):
        from genrescope.audio.decode import load_audio

        notes: list[str] = []
        y = load_audio(path, sr=None, notes=notes)
        pred = self.ranking(path, len(y) / 22050)
        pred.warnings = notes
        return pred


def _cut(path: Path, share: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * share)])
    return path


@pytest.fixture
def library(tmp_path):
    root = tmp_path / "music"
    whole = write_track(root / "whole.flac", "flac", seconds=10.0, seed=1)
    cut = _cut(write_track(root / "cut.flac", "flac", seconds=10.0, seed=2), 0.2)  # ~2 s of 10 decode
    return root, whole, cut


def test_cut_short_file_is_reported_and_not_written(library, tmp_path, capsys):
    root, whole, cut = library
    report = tmp_path / "r.jsonl"
    assert run_tag([str(root), "--write", "--report", str(report), "-j", "1", "--no-progress"], DecodingPredictor) == 0
    rows = {Path(r["path"]).name: r for r in R.read(report)}
    assert rows["cut.flac"]["status"] == "damaged" and "cut short" in rows["cut.flac"]["note"]
    assert not T.read_snapshot(cut)[1].get("genre")  # nothing written into it
    assert rows["whole.flac"]["status"] == "written" and not rows["whole.flac"]["note"]
    err = capsys.readouterr().err
    assert f"warning: {cut}" in err and "--write-damaged" in err and "1 damaged" in err


def test_write_damaged_writes_it_with_its_warnings_in_the_note(library, tmp_path, capsys):
    root, whole, cut = library
    report = tmp_path / "r.jsonl"
    assert run_tag([str(root), "--write", "--write-damaged", "--report", str(report), "-j", "1",
                    "--no-progress"], DecodingPredictor) == 0
    row = next(r for r in R.read(report) if Path(r["path"]).name == "cut.flac")
    assert row["status"] == "written" and T.read_snapshot(cut)[1].get("genre")
    assert "cut short" in row["note"] and len(row["note"]) > len("cut short: ")
    assert f"warning: {cut}" in capsys.readouterr().err  # the decoder's own warning, on stderr too


def test_dry_run_reports_the_warnings(library, tmp_path, capsys):
    root, whole, cut = library
    report = tmp_path / "r.csv"
    assert run_tag([str(root), "--report", str(report), "-j", "1", "--no-progress"], DecodingPredictor) == 0
    row = next(r for r in R.read(report) if Path(r["path"]).name == "cut.flac")
    assert row["status"] == "would-write" and row["note"]  # a dry run writes nothing anyway
    assert f"warning: {cut}" in capsys.readouterr().err


@pytest.mark.shared_data
def test_real_flac_cut_to_a_fifth(tmp_path, capsys):
    from conftest import SHARED_DATA

    src = SHARED_DATA / "gtzan" / "classical-15s" / "classical.00053.flac"
    if not src.is_file():
        pytest.skip(f"{src} is not in ../shared/data")
    root = tmp_path / "m"
    root.mkdir()
    cut = root / "c.flac"
    cut.write_bytes(src.read_bytes()[:src.stat().st_size // 5])
    report = tmp_path / "r.jsonl"
    assert run_tag([str(root), "--write", "--report", str(report), "-j", "1", "--no-progress"], DecodingPredictor) == 0
    (row,) = R.read(report)
    assert row["status"] == "damaged" and not T.read_snapshot(cut)[1].get("genre")
