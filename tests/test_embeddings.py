"""Transfer learning: backbone embeddings, `genrescope embed`, and a head trained with --backbone."""
import csv
import json

import numpy as np
import pytest

from genrescope.commands import main
from genrescope.inference.backbone import Backbone

from genrescope.testing import synth_music


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
    e = bb.embed_windows(x, batch_size=3)  # all three in one call
    assert e.shape == (3, bb.dim) and bb.dim == 200
    for i in range(3):  # batching does not matter: each window alone gives its row of the batch
        np.testing.assert_allclose(e[i:i + 1], bb.embed_windows(x[i:i + 1], batch_size=1), atol=1e-5)
    assert np.abs(e[0] - e[1]).max() > 1e-3  # different windows, different rows


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


@pytest.mark.slow
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
    # saliency of a head behind a backbone: its windows also carry the backbone's tags
    assert main(["predict", str(styles / "high" / "high0.wav"), "--model", str(out / "best.onnx"),
                 "--format", "json", "--saliency"]) == 0
    sal = json.loads(capsys.readouterr().out)[0]["saliency"]
    assert set(sal["labels"]) == {"low", "high"} and len(sal["drop"][0]) == 2
    pytest.importorskip("torch")
    _onnx_matches_torch_and_separates(out, styles, styles / "low" / "low1.wav", capsys)


def _onnx_matches_torch_and_separates(out, styles, wav, capsys):
    """The run's model through ONNX Runtime and PyTorch agree on ``wav``, and it classifies
    the held-out tracks of ``styles`` (two easy styles) without a mistake."""
    from genrescope.inference.predict import Predictor

    a = Predictor(str(out / "best.onnx"), backend="onnxruntime").predict(wav)  # exact float32, like torch
    b = Predictor(str(out / "best.safetensors"), runtime="torch").predict(wav)
    np.testing.assert_allclose(a.timeline.probs, b.timeline.probs, atol=1e-4)
    assert main(["evaluate", str(out / "best.onnx"), str(styles), "--split", "stratified", "--format",
                 "json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == 1.0


def _backbone_state(model):
    return {k: v.detach().clone() for k, v in model.backbone.state_dict().items()}


def test_finetune_trains_only_the_last_blocks_and_starts_from_the_shipped_weights():
    torch = pytest.importorskip("torch")
    from genrescope.models import build_model
    from genrescope.models.musicnn import load_musicnn

    shipped, _ = load_musicnn("musicnn-mtt")
    model = build_model("musicnn-finetune", n_classes=3, backbone="musicnn-mtt", train_blocks=2, seed=0)
    start = _backbone_state(model)
    for k, v in shipped.state_dict().items():
        torch.testing.assert_close(start[k], v, rtol=0, atol=0)
    trained = {n for n, p in model.backbone.named_parameters() if p.requires_grad}
    assert trained and all(n.split(".")[0] in ("pool_bn", "dense", "dense_bn", "midend") for n in trained)
    assert all(n.startswith("midend.2.") for n in trained if n.startswith("midend"))
    groups = model.param_groups(1e-3)
    assert [g["lr"] for g in groups] == [1e-3, pytest.approx(1e-4)]

    model.train()
    assert not model.backbone.training and model.head.training  # frozen batch-norm statistics
    x = torch.rand(4, 96, 187) * 3
    y = torch.tensor([0, 1, 2, 0])
    opt = torch.optim.AdamW(model.param_groups(1e-2))
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    end = _backbone_state(model)
    changed = {k for k in end if not torch.equal(end[k], start[k])}
    assert changed and all(k.startswith(("pool_bn.", "dense.", "dense_bn.", "midend.2.")) for k in changed)
    assert not any("running_" in k for k in changed)  # batch-norm statistics untouched
    with pytest.raises(Exception, match="train_blocks must be 0..5"):
        build_model("musicnn-finetune", n_classes=3, train_blocks=9)


@pytest.mark.slow
def test_finetune_from_the_command_line_trains_exports_and_predicts(styles, tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "ft"
    assert main(["train", str(styles), "--backbone", "musicnn-msd", "--finetune", "1", "--out", str(out),
                 "--epochs", "6", "--lr", "0.01", "--cache", str(tmp_path / "c"), "-j", "1", "--no-progress",
                 "--split", "stratified"]) == 0
    capsys.readouterr()
    import torch

    from genrescope.models.checkpoint import load_checkpoint, read_metadata
    from genrescope.models.musicnn import load_musicnn

    meta = read_metadata(out / "best.safetensors")
    assert meta["model_name"] == "musicnn-finetune" and meta["finetuned_from"] == "musicnn-msd"
    # the checkpoint holds the fine-tuned backbone: rebuilt, its back end differs from the shipped one
    model, _ = load_checkpoint(out / "best.safetensors")
    shipped, _ = load_musicnn("musicnn-msd")
    assert not torch.equal(model.backbone.dense.weight, shipped.dense.weight)
    torch.testing.assert_close(model.backbone.midend[2].conv.weight, shipped.midend[2].conv.weight, rtol=0, atol=0)
    _onnx_matches_torch_and_separates(out, styles, styles / "high" / "high1.wav", capsys)
    assert main(["train", str(styles), "--finetune", "1", "--out", str(tmp_path / "x")]) != 0
    assert "--finetune N needs --backbone" in capsys.readouterr().err
