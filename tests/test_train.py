"""The training loop end to end on generated audio: it learns, it is reproducible, a
resumed run equals an uninterrupted one, and it runs under torchrun with 2 CPU processes."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from genrescope.commands import main  # noqa: E402
from genrescope.config import FeatureConfig  # noqa: E402

from genrescope.testing import synth_music  # noqa: E402

FC = FeatureConfig(n_mels=32, window_s=1.0, window_hop_s=0.5)


@pytest.fixture(scope="module")
def two_styles(tmp_path_factory):
    """A folder dataset of two generated styles: slow and low vs fast and high."""
    import soundfile as sf

    root = tmp_path_factory.mktemp("styles")
    for style, (tempo, f0, base) in {"slow": (70, 110.0, 0), "fast": (170, 440.0, 100)}.items():
        (root / style).mkdir()
        for i in range(8):
            y = synth_music(3.0, 22050, seed=base + i, tempo=tempo * (1 + 0.03 * i), f0=f0 * (1 + 0.04 * i))
            sf.write(str(root / style / f"{style}{i}.wav"), y, 22050)
    return root


@pytest.fixture(scope="module")
def data(two_styles, tmp_path_factory):
    from genrescope.training.data import from_manifest
    from genrescope.datasets import load_dataset

    torch.set_num_threads(1)
    manifest = load_dataset(two_styles, split="stratified", seed=0)
    return from_manifest(manifest, FC, "log_mel", cache_root=tmp_path_factory.mktemp("cache"), jobs=1,
                         progress=False)


def _fit(data, out, resume=False, **kw):
    from genrescope.training.train import TrainConfig, fit

    cfg = TrainConfig(**{"epochs": 4, "batch_size": 8, "lr": 3e-3, "seed": 1, "patience": 10, **kw})
    return fit("cnn-gru", data, out, cfg=cfg, feature_config=FC, progress=False, resume=resume)


def test_learns_and_writes_everything(data, tmp_path):
    res = _fit(data, tmp_path / "run", epochs=6)
    losses = [h["train_loss"] for h in res.history]
    assert losses[-1] < losses[0]
    # two classes, two valid and two test tracks: chance is 0.5, and these styles are easy
    assert res.valid["track_accuracy"] == 1.0 and res.test["track_accuracy"] == 1.0
    assert res.valid["window_accuracy"] > 0.75, res.valid
    for name in ("best.safetensors", "best.onnx", "last.safetensors", "metrics.csv", "metrics.json",
                 "training_state.pt"):
        assert (tmp_path / "run" / name).is_file(), name
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test"]["split"] == "test" and metrics["test"]["tracks"] == len(data.items["test"])


def test_same_seed_same_numbers(data, tmp_path):
    a = _fit(data, tmp_path / "a", epochs=2)
    b = _fit(data, tmp_path / "b", epochs=2)
    for ha, hb in zip(a.history, b.history):
        assert ha["train_loss"] == hb["train_loss"]
        assert ha["track_accuracy"] == hb["track_accuracy"]


def test_resume_equals_uninterrupted(data, tmp_path):
    from genrescope.models.checkpoint import load_checkpoint
    from genrescope.training.train import TrainConfig, fit

    full = _fit(data, tmp_path / "full", epochs=4)

    class Killed(Exception):
        pass

    def kill_after_two(row):
        if row["epoch"] == 2:
            raise Killed

    cfg = TrainConfig(epochs=4, batch_size=8, lr=3e-3, seed=1, patience=10)
    with pytest.raises(Killed):
        fit("cnn-gru", data, tmp_path / "part", cfg=cfg, feature_config=FC, progress=False, on_epoch=kill_after_two)
    resumed = fit("cnn-gru", data, tmp_path / "part", cfg=cfg, feature_config=FC, progress=False, resume=True)
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in full.history]
    m1, _ = load_checkpoint(tmp_path / "full" / "last.safetensors")
    m2, _ = load_checkpoint(tmp_path / "part" / "last.safetensors")
    for (k, v1), v2 in zip(m1.state_dict().items(), m2.state_dict().values()):
        assert torch.equal(v1, v2), k


def test_resume_without_state_is_a_clear_error(data, tmp_path):
    from genrescope.errors import GenrescopeError

    with pytest.raises(GenrescopeError, match="nothing to resume"):
        _fit(data, tmp_path / "empty", resume=True)


def test_cli_train_evaluate_compare_predict(two_styles, tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["train", str(two_styles), "--model", "mfcc-cnn", "--out", str(out), "--epochs", "2", "--window-s", "1.0",
            "--cache", str(tmp_path / "c"), "-j", "1", "--no-progress", "--split", "stratified", "--augment", "crop,gain"]
    assert main(args) == 0
    captured = capsys.readouterr()
    text = captured.out
    assert "test (never used for selection)" in text
    first = captured.err.splitlines()[0]
    assert first.startswith(f"dataset {two_styles}") and "a folder per genre" in first and "split stratified" in first
    assert "training mfcc-cnn on 2 classes: train " in captured.err and "{'" not in captured.err  # no raw dict
    assert (out / "learning_curves.png").is_file() and (out / "confusion_test.png").is_file()
    assert main(["evaluate", str(out / "best.safetensors"), str(two_styles), "--split", "stratified",
                 "--format", "json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["split"] == "test" and res["n"] == res["tracks"] == 2 and res["failed"] == []
    # ONNX Runtime on the decoded audio scores what the loop scored in PyTorch on its cache
    stored = json.loads((out / "metrics.json").read_text())["test"]
    assert res["accuracy"] == stored["track_accuracy"] and res["macro_f1"] == stored["track_macro_f1"]
    assert res["window"]["n"] == stored["windows"]
    assert main(["compare", str(out / "best.safetensors"), "--format", "csv"]) == 0
    assert "mfcc-cnn" in capsys.readouterr().out
    wav = next((two_styles / "fast").glob("*.wav"))
    assert main(["predict", str(wav), "--model", str(out / "best.safetensors"), "--format", "json", "--timeline"]) == 0
    pred = json.loads(capsys.readouterr().out)[0]
    assert {g["label"] for g in pred["genres"]} == {"fast", "slow"}
    assert abs(sum(g["probability"] for g in pred["genres"]) - 1) < 1e-3
    assert len(pred["timeline"]["start_s"]) == len(pred["timeline"]["probabilities"]) >= 3


def test_bad_augment_name(two_styles, tmp_path, capsys):
    assert main(["train", str(two_styles), "--augment", "reverb", "--out", str(tmp_path / "x")]) == 2
    assert "reverb" in capsys.readouterr().err


def _torchrun(two_styles, out, cache, *extra) -> subprocess.CompletedProcess:
    import socket

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with socket.socket() as s:  # a free port, so parallel runs and leftovers cannot collide
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr", "127.0.0.1",
           "--master_port", str(port),
           "-m", "genrescope", "train", str(two_styles), "--model", "cnn-gru", "--out", str(out),
           "--window-s", "1.0", "--n-mels", "32", "--cache", str(cache), "-j", "1", "--no-progress",
           "--split", "stratified", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow
def test_torchrun_two_cpu_processes(two_styles, tmp_path):
    out = tmp_path / "ddp"
    r = _torchrun(two_styles, out, tmp_path / "c", "--epochs", "1")
    assert r.returncode == 0, r.stderr[-8000:]
    assert (out / "best.safetensors").is_file() and (out / "best.onnx").is_file()
    rows = (out / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 2  # header + one epoch, written once (rank 0 only)


@pytest.mark.slow
def test_torchrun_odd_batch_count(two_styles, tmp_path):
    """12 training tracks x 4 windows = 48 windows in batches of 16: 3 batches an epoch. Dealt out
    batch by batch, rank 0 would run 2 and rank 1 one, and gloo aborts on the unmatched all-reduce;
    padded to 2 x 24 windows, each rank runs 2."""
    from genrescope.training.train import steps_per_epoch

    assert steps_per_epoch(48, 16) == 3 and steps_per_epoch(48, 16, world=2) == 2
    out = tmp_path / "odd"
    r = _torchrun(two_styles, out, tmp_path / "c", "--epochs", "2", "--batch-size", "16")
    assert r.returncode == 0, r.stderr[-8000:]
    assert len((out / "metrics.csv").read_text().strip().splitlines()) == 3


def test_every_rank_gets_the_same_batches(data):
    """The padded shards: equal batch counts, and together they cover the whole epoch."""
    from genrescope.training.train import Dist, TrainConfig, _batches

    from genrescope.training.augment import AugmentConfig

    cfg = TrainConfig(batch_size=7, augment=AugmentConfig.from_names([]))
    n = data.epoch_size(cfg.windows_per_track)
    assert n % 2 == 0 and -(-n // 7) % 2 == 1  # an odd batch count on one rank
    shards = [list(_batches(data, cfg, 0, Dist(r, 2))) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == -(-(n // 2) // 7)
    whole = np.concatenate([xb for xb, _ in _batches(data, cfg, 0)])
    split = np.concatenate([xb for s in shards for xb, _ in s])
    assert len(split) == len(whole)
    assert sorted(map(bytes, whole.reshape(len(whole), -1))) == sorted(map(bytes, split.reshape(len(split), -1)))


def test_timeline_cnn_gives_a_distribution_every_few_hundred_ms(data, tmp_path, two_styles):
    from genrescope.inference.predict import Predictor

    from genrescope.training.train import TrainConfig, fit

    out = tmp_path / "tl"
    fit("timeline-cnn", data, out, cfg=TrainConfig(epochs=2, batch_size=8, seed=0), feature_config=FC, progress=False)
    wav = next((two_styles / "slow").glob("*.wav"))
    a = Predictor(str(out / "best.onnx"), backend="onnxruntime").predict(wav)  # exact float32, like torch
    tl = a.timeline
    hop = tl.end_s[0] - tl.start_s[0]
    assert 0.05 < hop < 0.5 and len(tl.probs) == pytest.approx(3.0 / hop, abs=2)
    assert tl.end_s[-1] == pytest.approx(3.0, abs=1e-3)
    np.testing.assert_allclose(tl.probs.sum(axis=1), 1.0, atol=1e-5)
    b = Predictor(str(out / "best.safetensors"), runtime="torch").predict(wav)
    np.testing.assert_allclose(a.timeline.probs, b.timeline.probs, atol=1e-4)


def test_evaluate_when_every_file_fails_is_a_clear_error(tmp_path):
    from genrescope.datasets import load_dataset
    from genrescope.errors import GenrescopeError
    from genrescope.training.evaluate import evaluate_dataset

    for style in ("fast", "slow"):
        (tmp_path / style).mkdir()
        for i in range(4):
            (tmp_path / style / f"{style}{i}.wav").write_bytes(b"RIFF not really a wav file" * 10)

    class Failing:
        name, labels = "stub", ["fast", "slow"]

        def predict(self, path):
            from genrescope.audio.decode import load_audio

            load_audio(path)  # raises: not audio

    manifest = load_dataset(tmp_path, split="stratified", seed=0)
    msg = r"none of the \d+ tracks of split 'test' could be analysed; the first: .*\.wav: not audio"
    with pytest.raises(GenrescopeError, match=msg):
        evaluate_dataset(Failing(), manifest, "test")


def test_compare_ranks_a_test_f1_of_zero_as_a_score(capsys, monkeypatch):
    """A model whose test macro-F1 is 0.0 ranks below one with 0.5, whatever its valid F1."""
    from genrescope.commands import main
    from genrescope.training import evaluate

    rows = [{"model": "zero.safetensors", "test_track_f1": 0.0, "valid_track_f1": 0.9},
            {"model": "none.safetensors", "test_track_f1": None, "valid_track_f1": None},
            {"model": "half.safetensors", "test_track_f1": 0.5, "valid_track_f1": 0.4},
            {"model": "valid-only.safetensors", "test_track_f1": None, "valid_track_f1": 0.3}]
    monkeypatch.setattr(evaluate, "compare_rows", lambda paths: [dict(r) for r in rows])
    assert main(["compare", "any.safetensors", "--format", "csv"]) == 0
    order = [line.split(",")[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert order == ["half.safetensors", "valid-only.safetensors", "zero.safetensors", "none.safetensors"]


def test_a_gtzan_named_subset_says_its_layout_and_warns_of_untrained_classes(tmp_path, capsys):
    """Genre folders of GTZAN-named files read as GTZAN with its official split, where this
    subset's classical tracks are all valid/test ones: the first line says so and a warning
    names the class with no training track."""
    import soundfile as sf

    from genrescope.testing import synth_music
    from genrescope.datasets import load_dataset
    from genrescope.datasets.gtzan import ff_lists

    lists = ff_lists()
    root = tmp_path / "mine"
    for k, genre in enumerate(("classical", "jazz", "metal")):
        ids = [f"{genre}.{i:05d}" for i in range(100) if f"{genre}.{i:05d}" in lists]
        train = [t for t in ids if lists[t] == "train"]
        other = [t for t in ids if lists[t] in ("valid", "test")]
        picked = other[:3] if genre == "classical" else train[:2] + other[:1]
        for j, track in enumerate(picked):
            (root / genre).mkdir(parents=True, exist_ok=True)
            sf.write(str(root / genre / f"{track}.wav"), synth_music(1.5, 8000, seed=10 * k + j), 8000)
    manifest = load_dataset(root)
    assert manifest.layout == "gtzan"
    out = tmp_path / "run"
    main(["train", str(root), "--model", "mfcc-cnn", "--out", str(out), "--epochs", "1", "--window-s", "1.0",
          "--cache", str(tmp_path / "c"), "-j", "1", "--no-progress"])
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"dataset {root}") and "GTZAN" in err[0] and "split gtzan-ff" in err[0]
    warning = next(line for line in err if "no training tracks" in line)
    assert "classical" in warning and "jazz" not in warning and "--split stratified" in warning
