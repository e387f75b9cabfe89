"""Dataset loaders on generated audio laid out like the real collections.

Every tree is built in tmp_path from short tones and noise (0.5 s), in the layouts and
metadata formats of the real datasets: a folder per genre, GTZAN (Marsyas tarball and
Kaggle), FMA (``tracks.csv`` with its three header rows) and a hand-written CSV.
"""
from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from genrescope.commands import main
from genrescope.datasets import Manifest, Skipped, Track, check_no_leakage, detect_layout, load_dataset
from genrescope.datasets.fma import FMA_KNOWN_BAD_MEDIUM, FMA_KNOWN_BAD_SMALL, read_tracks_csv
from genrescope.datasets.gtzan import FF_EXCLUDED_REASON, FF_UNLISTED_REASON, ff_lists, load_gtzan
from genrescope.datasets.manifest import read_csv_manifest
from genrescope.errors import DatasetError

SR = 22050
_FORMATS = {".wav": ("WAV", "PCM_16"), ".au": ("AU", "PCM_16"), ".flac": ("FLAC", "PCM_16"),
            ".mp3": ("MP3", "MPEG_LAYER_III")}
SHARED_SPLITS = Path(__file__).resolve().parents[2] / "shared" / "data" / "gtzan" / "splits"


def write_audio(path: Path, seconds: float = 0.5, freq: float = 440.0) -> Path:
    """A quiet tone plus noise, in the format of the file's extension."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    y = 0.2 * np.sin(2 * np.pi * freq * t) + 0.01 * np.random.default_rng(0).standard_normal(t.size)
    fmt, subtype = _FORMATS[path.suffix.lower()]
    sf.write(str(path), y.astype(np.float32), SR, format=fmt, subtype=subtype)
    return path


# ---------------------------------------------------------------- manifest

def test_manifest_counts_filter_and_csv_round_trip(tmp_path):
    entries = [Track(str(tmp_path / "a" / "1.wav"), "rock", "a/1", "X", "train", {"subset": "small"}),
               Track(str(tmp_path / "a" / "2.wav"), "rock", "a/2", None, "test"),
               Track("/elsewhere/3.wav", "jazz", "3", "Y, Jr.", None)]
    m = Manifest(["jazz", "rock", "pop"], entries, [Skipped("/x.wav", None, "why")])
    counts = m.counts()
    assert counts["rock"] == {"train": 1, "valid": 0, "test": 1, "none": 0, "total": 2}
    assert counts["pop"]["total"] == 0 and counts["jazz"]["none"] == 1
    assert m.splits() == ["train", "test", None]
    assert [t.track_id for t in m.filter("test")] == ["a/2"] and m.filter("test").labels == m.labels
    assert m.label_index("rock") == 1
    out = tmp_path / "m.csv"
    m.to_csv(out)
    text = out.read_text()
    assert "a/1.wav" in text and str(tmp_path) not in text  # paths inside the folder are relative
    back = read_csv_manifest(out)
    assert back.entries == entries
    assert back.entries[0].meta == {"subset": "small"}
    assert back.labels == ["jazz", "rock"]  # only labels that occur survive a CSV
    with pytest.raises(DatasetError, match="not in the label list"):
        Manifest(["rock"], entries)
    with pytest.raises(DatasetError, match="unknown split"):
        Manifest(["rock"], [Track("/a.wav", "rock", "a", split="validation")])


# ---------------------------------------------------------------- folder per genre

def test_folder_per_genre(tmp_path):
    root = tmp_path / "music"
    write_audio(root / "rock" / "song one.wav")
    write_audio(root / "rock" / "live" / "2019" / "encore.flac")
    write_audio(root / "rock" / "song one.flac")  # same name, other format
    write_audio(root / "pop" / "hit.mp3")
    write_audio(root / "pop" / "old.au")
    write_audio(root / "pop" / "._hit.wav")  # macOS resource-fork copy
    write_audio(root / "stray.wav")
    (root / "pop" / "lyrics.txt").write_text("la la")
    (root / "empty_genre").mkdir()
    assert detect_layout(root) == "folders"
    m = load_dataset(root, split="none")
    assert m.layout == "folders" and m.labels == ["pop", "rock"]
    assert sorted(t.track_id for t in m) == ["pop/hit", "pop/old", "rock/live/2019/encore", "rock/song one"]
    assert {t.track_id: t.label for t in m}["rock/live/2019/encore"] == "rock"
    assert all(t.artist is None and t.split is None for t in m)
    reasons = {Path(s.path).name: s.reason for s in m.skipped}
    assert "outside any genre folder" in reasons["stray.wav"]
    assert "hidden file" in reasons["._hit.wav"]
    assert "same track id" in reasons["song one.wav"]  # the first name in sorted order is kept
    split = load_dataset(root, seed=3)  # auto: stratified
    assert split.split_policy == "stratified" and all(t.split for t in split)


# ---------------------------------------------------------------- GTZAN

# real names from the shipped lists: blues.00000 valid, blues.00012 test, blues.00029 train,
# jazz.00054 train (but corrupt), reggae.00080 excluded, reggae.00082 test, reggae.00085 valid
GTZAN_TREE = {"blues": [0, 12, 29], "jazz": [1, 54], "reggae": [80, 82, 85]}


def make_gtzan(base: Path, ext: str = ".au", extra: bool = True) -> Path:
    for g, nums in GTZAN_TREE.items():
        for n in nums:
            write_audio(base / g / f"{g}.{n:05d}{ext}", freq=200 + 10 * n)
    if extra:
        (base / "input.mf").write_text("blues/blues.00000.au\tblues\n")  # Marsyas lists, not audio
    return base


def test_shipped_ff_lists_are_complete_and_disjoint():
    lists = ff_lists()
    assert len(lists) == 1000
    sizes = {p: sum(v == p for v in lists.values()) for p in ("train", "valid", "test", "excluded")}
    assert sizes == {"train": 443, "valid": 197, "test": 290, "excluded": 70}
    assert lists["jazz.00054"] == "train" and lists["reggae.00080"] == "excluded"
    assert lists["blues.00000"] == "valid" and lists["blues.00012"] == "test"


@pytest.mark.shared_data
@pytest.mark.skipif(not SHARED_SPLITS.is_dir(), reason="../shared/data is absent")
def test_shipped_ff_lists_match_the_shared_copy():
    from importlib import resources

    for part in ("train", "valid", "test", "excluded"):
        shipped = resources.files("genrescope").joinpath("data", "gtzan_ff", f"gtzan_ff_{part}.txt").read_text()
        assert shipped == (SHARED_SPLITS / f"gtzan_ff_{part}.txt").read_text()


@pytest.mark.shared_data
@pytest.mark.skipif(not (SHARED_SPLITS.parent / "clips").is_dir(), reason="../shared/data is absent")
def test_real_gtzan_excerpts_load_with_the_ff_split():
    from genrescope.datasets.dataset_report import dataset_report

    m = load_dataset(SHARED_SPLITS.parent / "clips")
    assert m.layout == "gtzan" and len(m) == 17 and len(m.labels) == 9
    assert [s.track_id for s in m.skipped] == ["pop.00021"]  # an excluded replica
    r = dataset_report(m)
    assert r["unreadable"] == [] and r["duration_s"]["total"] == pytest.approx(17 * 30, abs=17)


@pytest.mark.parametrize("layout", ["marsyas-root", "marsyas-genres", "kaggle-root", "kaggle-data"])
def test_gtzan_layouts_and_ff_split(tmp_path, layout, caplog):
    if layout.startswith("marsyas"):
        make_gtzan(tmp_path / "gtzan" / "genres", ".au")
        path = tmp_path / "gtzan" if layout == "marsyas-root" else tmp_path / "gtzan" / "genres"
    else:
        make_gtzan(tmp_path / "kaggle" / "Data" / "genres_original", ".wav", extra=False)
        path = tmp_path / "kaggle" if layout == "kaggle-root" else tmp_path / "kaggle" / "Data"
    assert detect_layout(path) == "gtzan"
    with caplog.at_level(logging.WARNING, logger="genrescope.datasets"):
        m = load_dataset(path)
    assert m.layout == "gtzan" and m.split_policy == "gtzan-ff"
    assert m.labels == ["blues", "jazz", "reggae"]
    assert {t.track_id: t.split for t in m} == {
        "blues.00000": "valid", "blues.00012": "test", "blues.00029": "train",
        "jazz.00001": "train", "reggae.00082": "test", "reggae.00085": "valid"}
    assert all(t.label == t.track_id.split(".")[0] for t in m)
    reasons = {s.track_id: s.reason for s in m.skipped}
    assert "corrupt" in reasons["jazz.00054"] and reasons["reggae.00080"] == FF_EXCLUDED_REASON
    assert any("jazz.00054" in r.message for r in caplog.records)
    check_no_leakage(m)


def test_gtzan_unlisted_and_misnamed_files(tmp_path, caplog):
    root = make_gtzan(tmp_path / "genres")
    write_audio(root / "blues" / "blues.00100.au")  # not a real GTZAN track: in no list
    write_audio(root / "blues" / "notes.au")  # not a GTZAN name
    write_audio(root / "jazz" / "blues.00003.au")  # name and folder disagree
    with caplog.at_level(logging.WARNING, logger="genrescope.datasets"):
        m = load_dataset(tmp_path, split="gtzan-ff")
    assert "blues.00100" not in {t.track_id for t in m}
    reasons = {Path(s.path).name: s.reason for s in m.skipped}
    assert reasons["blues.00100.au"] == FF_UNLISTED_REASON
    assert "not blues.000NN" in reasons["notes.au"] and "not jazz.000NN" in reasons["blues.00003.au"]
    assert any("1 tracks are in no gtzan-ff list" in r.message for r in caplog.records)
    # the stratified policy keeps every track, including the excluded and unlisted ones
    s = load_dataset(tmp_path, split="stratified", seed=1)
    assert {"reggae.00080", "blues.00100"} <= {t.track_id for t in s} and all(t.split for t in s)
    assert "jazz.00054" not in {t.track_id for t in s}
    assert "jazz.00054" in {t.track_id for t in load_gtzan(tmp_path, skip_known_bad=False)}


# ---------------------------------------------------------------- FMA

_TOP = (["album"] * 13 + ["artist"] * 17 + ["set"] * 2 + ["track"] * 20)
_SUB = ["comments", "date_created", "date_released", "engineer", "favorites", "id", "information", "listens",
        "producer", "tags", "title", "tracks", "type",
        "active_year_begin", "active_year_end", "associated_labels", "bio", "comments", "date_created",
        "favorites", "id", "latitude", "location", "longitude", "members", "name", "related_projects", "tags",
        "website", "wikipedia_page",
        "split", "subset",
        "bit_rate", "comments", "composer", "date_created", "date_recorded", "duration", "favorites",
        "genre_top", "genres", "genres_all", "information", "interest", "language_code", "license", "listens",
        "lyricist", "number", "publisher", "tags", "title"]

# track_id, genre_top, split, subset, artist id, artist name
FMA_ROWS = [
    (2, "Hip-Hop", "training", "small", 1, "AWOL"),
    (3, "Hip-Hop", "training", "medium", 1, "AWOL"),
    (5, "Hip-Hop", "training", "small", 1, "AWOL"),
    (140, "Folk", "validation", "small", 52, "Alec K. Redfearn & the Eyesores"),
    (1486, "Rock", "training", "medium", 300, "Known Empty"),  # on the fma_medium known-bad list
    (20000, "", "training", "medium", 7, "Nobody"),  # several root genres: no genre_top
    (98565, "Rock", "test", "small", 9000, "Short Clip"),  # on the fma_small known-bad list
    (99999, "Old-Time / Historic", "test", "small", 77, "Gramophone"),
    (123456, "Electronic", "training", "large", 8, "Large Only"),
]


def write_tracks_csv(path: Path, rows=FMA_ROWS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([""] + _TOP)
        w.writerow([""] + _SUB)
        w.writerow(["track_id"] + [""] * len(_SUB))
        for tid, genre, split, subset, aid, aname in rows:
            row = dict.fromkeys(range(len(_SUB)), "")
            row[16] = f"<p>{aname} bio,\nwith a comma and a line break</p>"  # artist/bio
            row[_TOP.index("artist") + 7] = str(aid)  # artist/id
            row[_TOP.index("artist") + 12] = aname  # artist/name
            row[30], row[31] = split, subset
            row[_TOP.index("track") + 7] = genre  # track/genre_top
            row[_TOP.index("track") + 8] = "[21]"
            w.writerow([tid] + [row[i] for i in range(len(_SUB))])


def make_fma(root: Path, folders=("small", "medium")) -> Path:
    write_tracks_csv(root / "fma_metadata" / "tracks.csv")
    member = {"small": {"small"}, "medium": {"small", "medium"}, "large": {"small", "medium", "large"}}
    for folder in folders:
        for tid, _, _, subset, _, _ in FMA_ROWS:
            if subset in member[folder]:
                write_audio(root / f"fma_{folder}" / f"{tid // 1000:03d}" / f"{tid:06d}.mp3", freq=300 + tid % 500)
    return root


def test_read_tracks_csv_three_row_header(tmp_path):
    write_tracks_csv(tmp_path / "tracks.csv")
    rows = read_tracks_csv(tmp_path / "tracks.csv")
    assert [r.track_id for r in rows] == [r[0] for r in FMA_ROWS]
    r = rows[3]
    assert (r.genre_top, r.split, r.subset, r.artist_id, r.artist_name) == \
        ("Folk", "valid", "small", "52", "Alec K. Redfearn & the Eyesores")
    assert rows[5].genre_top == "" and rows[0].split == "train" and rows[6].split == "test"


def test_fma_small_from_root(tmp_path, caplog):
    root = make_fma(tmp_path / "fma")
    assert detect_layout(root) == "fma"
    with caplog.at_level(logging.WARNING, logger="genrescope.datasets"):
        m = load_dataset(root)  # two audio folders: the smallest is used, with a warning
    assert any("several FMA audio folders" in r.message for r in caplog.records)
    assert m.layout == "fma" and m.split_policy == "fma-official"
    assert {t.track_id for t in m} == {"000002", "000005", "000140", "099999"}
    t = {t.track_id: t for t in m}
    assert Path(t["000140"].path).relative_to(root).as_posix() == "fma_small/000/000140.mp3"
    assert (t["000140"].label, t["000140"].artist, t["000140"].split) == ("Folk", "52", "valid")
    assert t["000002"].meta["artist_name"] == "AWOL" and t["099999"].meta["subset"] == "small"
    assert m.labels == ["Folk", "Hip-Hop", "Old-Time / Historic"]
    reasons = {s.track_id: s.reason for s in m.skipped}
    assert reasons == {"098565": FMA_KNOWN_BAD_SMALL["098565"]}
    check_no_leakage(m)


def test_fma_medium_includes_small(tmp_path):
    root = make_fma(tmp_path / "fma")
    for m in (load_dataset(root / "fma_medium"), load_dataset(root, fma_subset="medium")):
        assert m.root == str(root / "fma_medium")
        assert {t.track_id for t in m} == {"000002", "000003", "000005", "000140", "099999"}
        reasons = {s.track_id: s.reason for s in m.skipped}
        assert set(reasons) == {"001486", "020000", "098565"}  # large-only 123456 is not in medium
        assert "genre_top" in reasons["020000"] and reasons["001486"] == FMA_KNOWN_BAD_MEDIUM["001486"]


def test_fma_subset_from_a_larger_audio_folder_and_missing_files(tmp_path):
    root = make_fma(tmp_path / "fma", folders=("large",))
    (root / "fma_large" / "000" / "000140.mp3").unlink()
    m = load_dataset(root, fma_subset="small")
    assert {t.track_id for t in m} == {"000002", "000005", "099999"}
    assert "audio file not found" in {s.track_id: s.reason for s in m.skipped}["000140"]
    assert "123456" in {t.track_id for t in load_dataset(root)}  # large folder: large subset


def test_fma_bad_metadata_names_file_and_line(tmp_path):
    root = make_fma(tmp_path / "fma", folders=("small",))
    tracks = root / "fma_metadata" / "tracks.csv"
    lines = tracks.read_text().split("\n")
    tracks.write_text("\n".join(lines[1:]))  # one header row missing
    with pytest.raises(DatasetError, match="three header rows"):
        load_dataset(root)
    write_tracks_csv(tracks, FMA_ROWS[:2] + [(7, "Rock", "holdout", "small", 3, "Z")])
    with pytest.raises(DatasetError, match=r"tracks\.csv, line \d+: unknown split 'holdout'"):
        load_dataset(root)


# ---------------------------------------------------------------- CSV manifest

def test_csv_manifest(tmp_path):
    write_audio(tmp_path / "data" / "audio" / "a.wav")
    write_audio(tmp_path / "data" / "audio" / "b.flac")
    write_audio(tmp_path / "elsewhere.wav")
    write_audio(tmp_path / "other.mp3")
    (tmp_path / "data" / "m.csv").write_text(
        "Path,Label,Artist,Split,track_id\n"
        "audio/a.wav,rock,The Band,train,\n"
        "\n"
        "../elsewhere.wav,jazz,,validation,\n"
        f'"{tmp_path / "other.mp3"}",jazz,  ,VAL,my-id\n'
        '"audio/b.flac","rock","Band, The",test,\n')
    assert detect_layout(tmp_path / "data" / "m.csv") == "csv"
    m = load_dataset(tmp_path / "data" / "m.csv")
    assert m.layout == "csv" and m.split_policy == "given" and m.labels == ["jazz", "rock"]
    assert [t.path for t in m] == [str(tmp_path / "data" / "audio" / "a.wav"), str(tmp_path / "elsewhere.wav"),
                                   str(tmp_path / "other.mp3"), str(tmp_path / "data" / "audio" / "b.flac")]
    assert [t.track_id for t in m] == ["audio/a", str(tmp_path / "elsewhere"), "my-id", "audio/b"]
    assert [t.artist for t in m] == ["The Band", None, None, "Band, The"]
    assert [t.split for t in m] == ["train", "valid", "valid", "test"]
    (tmp_path / "data" / "nosplit.csv").write_text("path,label\naudio/a.wav,rock\naudio/b.flac,rock\n"
                                                   "../elsewhere.wav,jazz\n")
    s = load_dataset(tmp_path / "data" / "nosplit.csv", seed=2)
    assert s.split_policy == "stratified" and sorted(t.split for t in s) == ["test", "train", "valid"]


@pytest.mark.parametrize("text, message", [
    ("file,label\na.wav,rock\n", r"m\.csv, line 1: header lacks column\(s\) path"),
    ("path,label\na.wav,rock\nb.wav,\n", r"m\.csv, line 3: empty label for 'b\.wav'"),
    ("path,label\n,rock\n", r"m\.csv, line 2: empty path"),
    ("path,label,split\na.wav,rock,train\nb.wav,rock,holdout\n", r"m\.csv, line 3: unknown split 'holdout'"),
    ("path,label,track_id\na.wav,rock,x\nb.wav,rock,y\nc.wav,pop,x\n",
     r"m\.csv, line 4: track_id 'x' already used on line 2"),
    ("path,label\na.wav,rock,Smith, John\n", r"m\.csv, line 2: 4 fields but the header has 2"),
    ("path,label\n", r"m\.csv: CSV manifest has a header but no rows"),
    ("", r"m\.csv: CSV manifest is empty"),
])
def test_csv_manifest_errors_name_file_and_line(tmp_path, text, message):
    (tmp_path / "m.csv").write_text(text)
    with pytest.raises(DatasetError, match=message):
        load_dataset(tmp_path / "m.csv")


def test_layout_errors(tmp_path):
    with pytest.raises(DatasetError, match="no such file or folder"):
        load_dataset(tmp_path / "missing")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "readme.txt").write_text("no audio")
    with pytest.raises(DatasetError, match="cannot tell the dataset layout"):
        load_dataset(tmp_path)
    with pytest.raises(DatasetError, match="not a GTZAN tree"):
        load_dataset(tmp_path, layout="gtzan")
    with pytest.raises(DatasetError, match="gtzan-ff needs GTZAN track ids"):
        write_audio(tmp_path / "rock" / "x.wav")
        load_dataset(tmp_path, split="gtzan-ff")


# ---------------------------------------------------------------- CLI

def test_cli_dataset_info_table_lists_unreadable_files(tmp_path, capsys):
    root = make_gtzan(tmp_path / "genres")
    (root / "blues" / "blues.00001.au").write_bytes(b"")  # valid in gtzan-ff, but empty
    # valid in gtzan-ff, garbage (as .wav: libsndfile reads a header-less .au as raw mu-law)
    (root / "jazz" / "jazz.00005.wav").write_bytes(b"not audio at all" * 10)
    assert main(["dataset", "info", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("label"))
    assert header.split() == ["label", "train", "valid", "test", "total"]
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.split()[:1] in (["blues"], ["jazz"],
                                                                                    ["reggae"], ["total"])}
    assert rows["blues"] == ["1", "2", "1", "4"]
    assert rows["jazz"] == ["1", "1", "0", "2"]
    assert rows["total"] == ["2", "4", "2", "8"]
    assert "blues.00001.au: file is empty (0 bytes)" in out
    unreadable = out[out.index("unreadable: 2 files"):out.index("split leakage")]
    assert "jazz.00005.wav: " in unreadable and "blues.00001.au: " in unreadable
    assert "unreadable: 2 files" in out and "split leakage: none" in out
    assert "jazz.00054" in out and "excluded by the gtzan-ff split" in out
    assert "0:00:03 of audio" in out  # six readable 0.5 s files


def test_cli_dataset_info_json_and_no_check(tmp_path, capsys):
    root = make_fma(tmp_path / "fma", folders=("small",))
    assert main(["dataset", "info", str(root), "--format", "json", "--split", "stratified", "--seed", "4"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["layout"] == "fma" and r["split_policy"] == "stratified" and r["n_tracks"] == 4
    assert r["totals"]["total"] == 4 and r["counts"]["Hip-Hop"]["total"] == 2
    assert r["duration_s"]["total"] == pytest.approx(2.0, abs=0.2)  # mp3 padding aside
    assert r["unreadable"] == [] and r["leakage"] == []
    assert r["skipped"][0]["track_id"] == "098565"
    assert main(["dataset", "info", str(root), "--format", "json", "--no-check", "--layout", "fma",
                 "--fma-subset", "small"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["duration_s"] is None and r["unreadable"] is None
    assert r["totals"] == {"train": 2, "valid": 1, "test": 1, "none": 0, "total": 4}


def test_cli_dataset_info_unloadable_dataset(tmp_path, capsys):
    assert main(["dataset", "info", str(tmp_path / "nothing")]) != 0
    assert "no such file or folder" in capsys.readouterr().err
