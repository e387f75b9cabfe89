"""`genrescope predict` and the Predictor on the shipped models (ONNX Runtime, no torch)."""
import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest

from genrescope.commands import main
from genrescope.inference.predict import Predictor
from genrescope.features.windows import window_starts

from genrescope.testing import synth_music


@pytest.fixture(scope="module")
def predictor():
    return Predictor()


def test_default_model_json_schema_and_timeline(write_audio, capsys):
    path = write_audio("song.ogg", duration=12.0, sr=44100, channels=2)
    assert main(["predict", str(path), "--format", "json", "--timeline", "--top", "0"]) == 0
    (obj,) = json.loads(capsys.readouterr().out)
    assert obj["path"] == str(path) and obj["error"] is None and obj["model"] == "genre10"
    assert obj["duration_s"] == pytest.approx(12.0, abs=0.01)
    probs = [g["probability"] for g in obj["genres"]]
    assert probs == sorted(probs, reverse=True) and all(0 <= p <= 1 for p in probs)
    assert {"rock", "classical", "jazz", "reggae", "disco"} <= {g["label"] for g in obj["genres"]}
    assert obj["multi_label"] is False and sum(probs) == pytest.approx(1.0, abs=1e-3)
    tl = obj["timeline"]
    n = len(tl["start_s"])
    assert n == len(tl["end_s"]) == len(tl["probabilities"]) and len(tl["probabilities"][0]) == len(tl["labels"])
    # windows cover the whole song: 187-frame patches at 16 kHz / hop 256, the last aligned to the end
    frames = 1 + int(12.0 * 16000) // 256
    assert n == len(window_starts(frames, 187, 187))
    assert tl["start_s"][0] == 0 and tl["end_s"][-1] == pytest.approx(12.0, abs=0.02)


def test_demo_excerpt_is_jazz(predictor):
    from pathlib import Path

    demo = Path(__file__).resolve().parents[1] / "demo" / "vibe_ace_excerpt.ogg"
    pred = predictor.predict(demo)  # genre10: its head says blues, its taggers' strongest tag is jazz
    assert "jazz" in [g for g, _ in pred.genres[:3]], pred.genres[:3]
    assert pred.tags[0][0] == "jazz", pred.tags[:3]
    assert pred.duration_s == pytest.approx(20.0, abs=0.01)
    tags_only = Predictor("musicnn").predict(demo)
    assert tags_only.genres[0][0] == "jazz", tags_only.genres[:3]


def test_folder_glob_and_one_bad_file(tmp_path, write_audio, capsys):
    write_audio("lib/a.wav", duration=4.0)
    write_audio("lib/sub/b.flac", duration=4.0, seed=3)
    (tmp_path / "lib" / "broken.mp3").write_bytes(b"\xff\xfb" + b"\x00" * 3000)
    code = main(["predict", str(tmp_path / "lib"), "--format", "json", "-j", "2"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    by_name = {o["path"].rsplit("/", 1)[-1]: o for o in out}
    assert set(by_name) == {"a.wav", "b.flac", "broken.mp3"}
    assert by_name["broken.mp3"]["error"] and "broken.mp3" in by_name["broken.mp3"]["error"]
    assert by_name["broken.mp3"]["genres"] == []
    assert by_name["a.wav"]["error"] is None and by_name["a.wav"]["genres"]
    assert main(["predict", str(tmp_path / "lib" / "*.wav"), "--format", "csv", "--top", "2"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["rank"] for r in rows] == ["1", "2"] and rows[0]["path"].endswith("a.wav")


def test_table_output_and_timeline_csv(write_audio, tmp_path, capsys):
    path = write_audio("x.wav", duration=7.0)
    out_csv = tmp_path / "tl.csv"
    assert main(["predict", str(path), "--timeline", str(out_csv), "--tags"]) == 0
    text = capsys.readouterr().out
    assert "model genre10" in text and "other tags:" in text and "tag probabilities" not in text
    rows = list(csv.reader(out_csv.open()))
    assert rows[0][:2] == ["start_s", "end_s"] and len(rows) - 1 == 3  # 7 s -> windows at 0, 2.99, end-aligned


def test_too_short_and_missing(tmp_path, write_audio, capsys):
    short = write_audio("short.wav", y=synth_music(0.3))
    assert main(["predict", str(short), str(tmp_path / "nope.wav")]) == 1
    out = capsys.readouterr().out
    assert "at least 1.00 s is needed" in out and "file not found" in out


def test_gtzan_features_model_is_a_distribution(write_audio):
    pred = Predictor("gtzan-features").predict(write_audio("g.wav", duration=10.0))
    assert len(pred.genres) == 10 and not pred.timeline.multi_label
    assert sum(p for _, p in pred.genres) == pytest.approx(1.0, abs=1e-4)
    assert pred.tags is None


def test_ensemble_averages_members(write_audio):
    from genrescope.inference.runtimes import load_inference_model

    ens = load_inference_model("musicnn", backend="onnxruntime")  # one graph: both taggers, tags merged
    msd, mtt = (load_inference_model(m, backend="onnxruntime") for m in ("musicnn-msd", "musicnn-mtt"))
    x = np.random.default_rng(0).uniform(0, 3, (2, 96, 187)).astype(np.float32)
    p, a, b = ens.predict_windows(x), msd.predict_windows(x), mtt.predict_windows(x)
    np.testing.assert_allclose(p[:, ens.labels.index("jazz")], a[:, msd.labels.index("jazz")], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(p[:, ens.labels.index("classical")], b[:, mtt.labels.index("classical")], rtol=1e-5, atol=1e-7)
    rock = (a[:, msd.labels.index("rock")] + b[:, mtt.labels.index("rock")]) / 2
    np.testing.assert_allclose(p[:, ens.labels.index("rock")], rock, rtol=1e-5, atol=1e-7)


def test_predict_never_imports_torch(write_audio):
    path = write_audio("t.wav", duration=4.0)
    code = ("import sys\nfrom genrescope.commands import main\n"
            f"rc = main(['predict', {str(path)!r}, '--format', 'json'])\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO_TORCH', rc)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip().splitlines()[-1] == "NO_TORCH 0", r.stderr[-2000:]


def test_unknown_model_is_a_clean_error(write_audio, capsys):
    assert main(["predict", str(write_audio("u.wav")), "--model", "no-such-model"]) == 2
    assert "not a file and not a shipped model" in capsys.readouterr().err


@pytest.mark.parametrize("model", ["musicnn", "gtzan-features"])
def test_torch_runtime_agrees_with_onnx(write_audio, model):
    pytest.importorskip("torch")
    path = write_audio("p.wav", duration=8.0, seed=5)
    a = Predictor(model, backend="onnxruntime").predict(path)
    b = Predictor(model, runtime="torch").predict(path)
    assert a.timeline.labels == b.timeline.labels
    np.testing.assert_allclose(a.timeline.probs, b.timeline.probs, atol=1e-4)


# ------------------------------------------------------------------ bad samples, damaged files, no NaN out
def _no_non_finite_numbers(text: str) -> bool:
    import re

    text = text.replace("NaN or infinity", "")  # the error message itself
    return re.search(r"(?i)\b(nan|-?inf|-?infinity)\b", text) is None


def _nan_wav(write_audio, name="bad.wav", value=np.nan):
    y = synth_music(4.0)
    y[40000] = value
    return write_audio(name, y=y, subtype="FLOAT")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_non_finite_samples_are_a_per_file_error(write_audio, capsys, value, fmt):
    bad = _nan_wav(write_audio, value=value)
    good = write_audio("good.wav", duration=4.0)
    assert main(["predict", str(bad), str(good), "--format", fmt, "--model", "musicnn-msd", "-j", "1"]) == 1
    out, err = capsys.readouterr()
    assert "NaN or infinity (first at 1.81 s)" in out + err and str(bad) in out + err
    assert _no_non_finite_numbers(out), out
    if fmt == "json":
        objs = json.loads(out)
        assert objs[0]["error"] and objs[0]["genres"] == [] and objs[1]["error"] is None


def _nan_model(monkeypatch):
    """Every model loaded from now on answers NaN (finite audio can overflow a model's features)."""
    import dataclasses

    from genrescope.inference import runtimes

    real = runtimes.load_inference_model

    def load(*a, **kw):
        m = real(*a, **kw)
        return dataclasses.replace(m, predict_windows=lambda x: np.full((len(x), len(m.labels)), np.nan, np.float32))

    monkeypatch.setattr(runtimes, "load_inference_model", load)


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_non_finite_model_output_never_reaches_any_output(write_audio, tmp_path, capsys, monkeypatch, fmt):
    _nan_model(monkeypatch)
    path = write_audio("x.wav", duration=4.0)
    tl = tmp_path / "tl_{stem}.csv"
    assert main(["predict", str(path), "--format", fmt, "--model", "musicnn-msd", "--timeline", str(tl)]) == 1
    out, err = capsys.readouterr()
    assert "non-finite probabilities" in out + err and str(path) in out + err
    assert _no_non_finite_numbers(out), out
    assert not list(tmp_path.glob("tl_*.csv"))  # no timeline CSV with NaN in it
    if fmt == "json":
        json.loads(out)  # strict JSON


def test_json_output_refuses_nan(monkeypatch):
    from genrescope.inference.output import json_text as _json

    with pytest.raises(ValueError):
        _json([{"probability": float("nan")}])


def test_silent_input_predicts_with_a_warning(write_audio, capsys):
    path = write_audio("quiet.wav", y=np.zeros(4 * 22050, np.float32))
    assert main(["predict", str(path), "--format", "json", "--model", "musicnn-msd"]) == 0
    out, err = capsys.readouterr()
    (obj,) = json.loads(out)
    assert obj["error"] is None and obj["genres"]
    assert len(obj["warnings"]) == 1 and "silent" in obj["warnings"][0] and str(path) in obj["warnings"][0]
    assert f"genrescope: warning: {path}: audio is silent" in err


@pytest.mark.parametrize("ext", ["wav", "mp3"])
def test_truncated_file_is_predicted_on_what_decodes(write_audio, tmp_path, capsys, ext):
    data = write_audio(f"whole.{ext}", duration=8.0).read_bytes()
    half = tmp_path / f"half.{ext}"
    half.write_bytes(data[: len(data) // 2])
    assert main(["predict", str(half), "--format", "json", "--model", "musicnn-msd"]) == 0
    out, err = capsys.readouterr()
    (obj,) = json.loads(out)
    assert obj["error"] is None and obj["genres"] and 3.0 < obj["duration_s"] < 5.0
    assert obj["warnings"] and all(w.startswith(f"{half}: ") for w in obj["warnings"])
    assert any("truncated" in w or "damaged" in w for w in obj["warnings"])
    assert "genrescope: warning:" in err and "Note:" not in err and "Xing" not in err  # no raw libmpg123 text


def test_too_little_decodes_is_an_error(write_audio, tmp_path, capsys):
    data = write_audio("whole.wav", duration=8.0).read_bytes()
    sliver = tmp_path / "sliver.wav"
    sliver.write_bytes(data[: 44 + 2 * 5000])  # 0.23 s of the promised 8 s
    assert main(["predict", str(sliver), "--format", "json", "--model", "musicnn-msd"]) == 1
    (obj,) = json.loads(capsys.readouterr().out)
    assert "truncated" in obj["error"] and str(sliver) in obj["error"]


def test_offset_and_duration_give_file_times(write_audio):
    """predict(offset=) analyses from there on, and the timeline is in the file's seconds."""
    p = Predictor("musicnn-msd")
    path = write_audio("long.wav", duration=26.0, seed=4)
    whole = p.predict(path)
    # 14.96 s = 5 musicnn windows of 187 frames of 256 samples at 16 kHz, and a whole number of
    # samples at 22050 Hz: the part's frames fall on the file's frame grid
    part = p.predict(path, offset=14.96, duration=6.0)
    assert part.duration_s == pytest.approx(6.0, abs=1e-3)
    assert part.timeline.start_s[0] == pytest.approx(14.96, abs=1e-3)
    assert part.timeline.end_s[-1] == pytest.approx(20.96, abs=0.02)
    # the part's second window is the file's seventh: the same audio away from the cut (where
    # padding and the resampler's start differ), so the same answer
    assert whole.timeline.start_s[6] == pytest.approx(part.timeline.start_s[1], abs=1e-3)
    np.testing.assert_allclose(part.timeline.probs[1], whole.timeline.probs[6], atol=1e-3)
    assert np.abs(part.timeline.probs[1] - whole.timeline.probs[1]).max() > 1e-2


def test_two_timelines_with_one_stem_do_not_overwrite(write_audio, tmp_path, capsys):
    a = write_audio("a/song.wav", duration=4.0, seed=1)
    b = write_audio("b/song.flac", duration=7.0, seed=2)
    tl = tmp_path / "tl_{stem}.csv"
    assert main(["predict", str(a), str(b), "--model", "musicnn-msd", "--timeline", str(tl), "-j", "1"]) == 0
    err = capsys.readouterr().err
    first, second = tmp_path / "tl_song.csv", tmp_path / "tl_song-2.csv"
    assert f"timeline of {a} -> {first}" in err and f"timeline of {b} -> {second}" in err
    assert len(first.read_text().splitlines()) - 1 == 2 and len(second.read_text().splitlines()) - 1 == 3


def test_json_tags_only_with_tags_and_limited_by_top(write_audio, capsys):
    """``tags`` comes with --tags (as the table's "other tags"), and --top limits them too."""
    path = write_audio("t.wav", duration=4.0, sr=16000)
    assert main(["predict", str(path), "--format", "json"]) == 0
    (plain,) = json.loads(capsys.readouterr().out)
    assert "tags" not in plain and len(plain["genres"]) == 5
    assert main(["predict", str(path), "--format", "json", "--tags", "--top", "3"]) == 0
    (tagged,) = json.loads(capsys.readouterr().out)
    assert len(tagged["genres"]) == 3 and len(tagged["tags"]) == 3
    assert main(["predict", str(path), "--format", "json", "--tags", "--top", "0"]) == 0
    (every,) = json.loads(capsys.readouterr().out)
    assert len(every["tags"]) > 50 and every["tags"][:3] == tagged["tags"]


def test_csv_timeline_without_a_path_is_an_error_not_dropped(write_audio, capsys):
    path = write_audio("c.wav", duration=4.0, sr=16000)
    assert main(["predict", str(path), "--format", "csv", "--timeline"]) == 2
    err = capsys.readouterr().err
    assert "--timeline" in err and "timeline.csv" in err and "Traceback" not in err


def test_one_window_is_singular_and_segments_end_at_the_duration(write_audio, capsys):
    from genrescope.inference.predict import Predictor
    from genrescope.insight.segments import segment_timeline

    path = write_audio("one.wav", duration=2.0, sr=16000)  # shorter than one 3 s window
    assert main(["predict", str(path)]) == 0
    out = capsys.readouterr().out
    assert "1 window," in out and "1 windows" not in out
    long = write_audio("long.wav", duration=61.459, sr=16000)
    pred = Predictor("musicnn-msd").predict(long)
    assert pred.timeline.end_s[-1] > pred.duration_s  # the last window's frames run past the audio
    segs = segment_timeline(pred.timeline, pred.genres, duration_s=pred.duration_s)
    assert segs[-1]["end_s"] == pytest.approx(pred.duration_s, abs=1e-3)
    assert main(["predict", str(long), "--model", "musicnn-msd", "--segments", "--format", "json"]) == 0
    (obj,) = json.loads(capsys.readouterr().out)
    assert obj["segments"][-1]["end_s"] <= obj["duration_s"]


def test_messages_name_the_real_problem(write_audio, tmp_path, capsys):
    """A non-model file as --model, a text file named .mp3, and a path that never existed each
    get a message about what is really wrong."""
    song = write_audio("s.wav", duration=2.0, sr=16000)
    fake = tmp_path / "fake.mp3"
    fake.write_text("hello")
    assert main(["predict", str(song), "--model", str(fake)]) == 2
    err = capsys.readouterr().err
    assert "not a model file" in err and "PyTorch" not in err and "--runtime" not in err
    text = tmp_path / "notes.mp3"
    text.write_text("just some text, not audio\n" * 20)
    assert main(["predict", str(text)]) == 1
    out = capsys.readouterr().out
    assert "not audio" in out and "not a supported audio file" not in out and "genrescope[av]" not in out
    assert main(["tag", str(tmp_path / "nope"), "--report", str(tmp_path / "r.csv")]) == 1
    err = capsys.readouterr().err
    assert "no such file or folder" in err and "vanished" not in err


def test_without_torch_models_and_train_say_what_to_install(tmp_path):
    """The plain install has no PyTorch: models and train answer with one line naming the extra."""
    code = ("import sys; sys.modules['torch'] = None\n"
            "from genrescope.commands import main\n"
            "sys.exit(main(sys.argv[1:]))")
    for args in (["models"], ["train", str(tmp_path), "--out", str(tmp_path / "o")]):
        out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
        assert out.returncode == 2, out
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "PyTorch" in lines[0] and "genrescope[train]" in lines[0], out.stderr
        assert "Traceback" not in out.stderr and "name " not in out.stdout  # no empty table either
