"""Transfer learning: backbone embeddings, `genrescope embed`, and a head trained with --backbone."""
import csv
import json

import numpy as np
import pytest

from genrescope.cli import main
from genrescope.embeddings import Backbone

from conftest import synth_music


@pytest.fixture(scope="module")
def styles(tmp_path_factory):
    import soundfile as sf

    root = tmp_path_factory.mktemp("bb")
    for style, (tempo, f0, base) in {"low": (70, 110.0, 0), "high": (170, 880.0, 50)}.items():
        (root / style).mkdir()
        for i in range(6):
            sf.write(str(root / style / f"{style}{i}.wav"),
                     synth_music(4.0, 22050, seed=base + i, tempo=tempo, f0=f0 * (1 + 0.03 * i)), 22050)
    return root


def test_backbone_embeddings_match_the_onnx_graph():
    bb = Backbone("musicnn-msd")
    x = np.random.default_rng(0).uniform(0, 3, (3, 96, 187)).astype(np.float32)
    e = bb.embed_windows(x)
    assert e.shape == (3, bb.dim) and bb.dim == 200
    np.testing.assert_allclose(e[1:2], bb.embed_windows(x[1:2]), atol=1e-5)  # batching does not matter


def test_backbone_without_embeddings_is_refused():
    from genrescope.errors import CheckpointError

    with pytest.raises(CheckpointError, match="no 'embeddings' output"):
        Backbone("gtzan-features")


def test_embed_command_writes_windows_and_tracks(styles, tmp_path, capsys):
    out = tmp_path / "emb"
    assert main(["embed", str(styles), "--out", str(out), "--cache", str(tmp_path / "c"), "-j", "1",
                 "--no-progress", "--split", "stratified"]) == 0
    win, trk = np.load(out / "windows.npy"), np.load(out / "tracks.npy")
    rows = list(csv.DictReader((out / "windows.csv").open()))
    tracks = list(csv.DictReader((out / "tracks.csv").open()))
    assert win.shape == (len(rows), 200) and trk.shape == (12, 200) == (len(tracks), 200)
    assert sum(int(t["n_windows"]) for t in tracks) == len(rows)
    first = [i for i, r in enumerate(rows) if r["track_id"] == tracks[0]["track_id"]]
    np.testing.assert_allclose(trk[0], win[first].mean(axis=0), rtol=1e-5, atol=1e-6)
    assert {r["split"] for r in rows} == {"train", "valid", "test"}
    assert json.loads((out / "embeddings.json").read_text())["backbone"] == "musicnn-msd"


def test_head_on_backbone_trains_exports_and_predicts(styles, tmp_path, capsys):
    out = tmp_path / "head"
    assert main(["train", str(styles), "--backbone", "musicnn-msd", "--out", str(out), "--epochs", "25",
                 "--lr", "0.01", "--cache", str(tmp_path / "c"), "-j", "1", "--no-progress",
                 "--split", "stratified"]) == 0
    capsys.readouterr()
    assert main(["predict", str(styles / "high" / "high0.wav"), "--model", str(out / "best.onnx"),
                 "--format", "json", "--timeline"]) == 0
    pred = json.loads(capsys.readouterr().out)[0]
    assert {g["label"] for g in pred["genres"]} == {"low", "high"} and pred["multi_label"] is False
    assert len(pred["timeline"]["start_s"]) == 2  # 4 s of audio, 2.99 s windows, the last end-aligned
    # the same head through PyTorch agrees with ONNX Runtime
    from genrescope.predict import Predictor

    pytest.importorskip("torch")
    a = Predictor(str(out / "best.onnx")).predict(styles / "low" / "low1.wav")
    b = Predictor(str(out / "best.safetensors"), runtime="torch").predict(styles / "low" / "low1.wav")
    np.testing.assert_allclose(a.timeline.probs, b.timeline.probs, atol=1e-4)
    # a linear head on musicnn embeddings separates these two styles on held-out tracks
    assert main(["evaluate", str(out / "best.onnx"), str(styles), "--split-policy", "stratified", "--format",
                 "json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == 1.0
