"""Checkpoints rebuild themselves; damaged or foreign files fail with a clear CheckpointError."""
import json
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from safetensors.torch import load_file, save_file  # noqa: E402

from genrescope.models import checkpoint as ckpt  # noqa: E402
from genrescope.errors import CheckpointError  # noqa: E402
from genrescope.models import BUILTIN  # noqa: E402

from helpers.models import FC, LABELS, N_CLASSES, batch, feature_inputs, make, trained_like  # noqa: E402,F401

pytestmark = pytest.mark.usefixtures("one_thread")


def save(path, model, name, **kw):
    return ckpt.save_checkpoint(path, model, model_name=name, feature_config=FC, labels=LABELS,
                                extra={"dataset": "synthetic", "split": {"train": 8}, "epoch": 3}, **kw)


def rewrite(path, out, **meta_changes):
    """Copy a checkpoint with some metadata values replaced."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        meta = json.loads(f.read(n))["__metadata__"]
    meta.update(meta_changes)
    save_file(load_file(str(path)), str(out), metadata=meta)
    return out


@pytest.mark.parametrize("name", BUILTIN)
def test_round_trip_gives_identical_outputs(name, tmp_path):
    model = trained_like(name)
    path = save(tmp_path / "m.safetensors", model, name, metrics={"valid": {"track_accuracy": 0.5}})
    loaded, info = ckpt.load_checkpoint(path)
    assert type(loaded) is type(model) and not loaded.training
    x = batch(model, t=FC.window_frames + 9)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert info["model_name"] == name and info["labels"] == LABELS and info["feature_config"] == FC
    assert info["model_config"] == model.config and info["format_version"] == ckpt.FORMAT_VERSION
    assert info["dataset"] == "synthetic" and info["epoch"] == 3 and info["metrics"]["valid"]["track_accuracy"] == 0.5
    assert info["created"].endswith("+00:00") and info["command"]
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temporary files left


def test_metadata_is_readable_without_loading(tmp_path):
    path = save(tmp_path / "m.safetensors", make("mfcc-cnn"), "mfcc-cnn", command="genrescope train x")
    meta = ckpt.read_metadata(path)
    assert meta["model_config"]["kind"] == "mfcc" and meta["command"] == "genrescope train x"


def test_a_failed_write_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    model = make("mfcc-cnn")
    path = save(tmp_path / "m.safetensors", model, "mfcc-cnn")
    before = path.read_bytes()

    def broken(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.torch.save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        save(path, make("mfcc-cnn", seed=9), "mfcc-cnn")
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_save_refuses_inconsistent_inputs(tmp_path):
    model = make("resnet-chunk")
    with pytest.raises(CheckpointError, match="3 labels for a model with 4 outputs"):
        ckpt.save_checkpoint(tmp_path / "a", model, model_name="resnet-chunk", feature_config=FC, labels=LABELS[:3])
    with pytest.raises(CheckpointError, match="bins"):
        ckpt.save_checkpoint(tmp_path / "a", model, model_name="resnet-chunk", feature_config=FC.replace(n_mels=64),
                             labels=LABELS)
    with pytest.raises(CheckpointError, match="JSON"):
        save(tmp_path / "a", model, "resnet-chunk", metrics={"f": object()})
    with pytest.raises(Exception, match="unknown model"):
        ckpt.save_checkpoint(tmp_path / "a", model, model_name="nope", feature_config=FC, labels=LABELS)


@pytest.fixture
def good(tmp_path):
    return save(tmp_path / "good.safetensors", make("cnn-gru"), "cnn-gru")


def test_missing_empty_and_garbage_files(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        ckpt.load_checkpoint(tmp_path / "absent.safetensors")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(CheckpointError, match="too short"):
        ckpt.load_checkpoint(tmp_path / "empty")
    (tmp_path / "garbage").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        ckpt.load_checkpoint(tmp_path / "garbage")
    (tmp_path / "pickle").write_bytes(pickle.dumps({"state": 1}))
    with pytest.raises(CheckpointError):
        ckpt.load_checkpoint(tmp_path / "pickle")


def test_truncated_file(good, tmp_path):
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="truncated"):
        ckpt.load_checkpoint(cut)


def test_damaged_weights_fail_the_checksum(good, tmp_path):
    data = bytearray(good.read_bytes())
    data[-10] ^= 0xFF  # inside the last tensor's bytes: the structure stays valid
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum"):
        ckpt.load_checkpoint(bad)


def test_newer_format_version(good, tmp_path):
    with pytest.raises(CheckpointError, match="format version 99.*Upgrade genrescope"):
        ckpt.load_checkpoint(rewrite(good, tmp_path / "v99", format_version="99"))
    with pytest.raises(CheckpointError, match="unreadable format version"):
        ckpt.load_checkpoint(rewrite(good, tmp_path / "vx", format_version="one"))


def test_not_a_genrescope_checkpoint(tmp_path):
    path = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(3)}, str(path))
    with pytest.raises(CheckpointError, match="not a genrescope checkpoint"):
        ckpt.load_checkpoint(path)


def test_unknown_model_name(good, tmp_path):
    with pytest.raises(CheckpointError, match="unknown model 'transformer-xxl'"):
        ckpt.load_checkpoint(rewrite(good, tmp_path / "u", model_name="transformer-xxl"))


def test_shape_mismatch(good, tmp_path):
    meta = ckpt.read_metadata(good)
    cfg = dict(meta["model_config"], dense=32)
    with pytest.raises(CheckpointError, match="shape mismatch.*encoder"):
        ckpt.load_checkpoint(rewrite(good, tmp_path / "s", model_config=json.dumps(cfg)))
    with pytest.raises(CheckpointError, match="labels for a model with"):
        ckpt.load_checkpoint(rewrite(good, tmp_path / "l", labels=json.dumps(LABELS[:2])))
    with pytest.raises(CheckpointError, match="cannot rebuild"):
        ckpt.load_checkpoint(rewrite(good, tmp_path / "c", model_config=json.dumps(dict(cfg, cell="rnn"))))


# ---------------------------------------------------------------- training state
def _setup(seed):
    model = make("cnn-gru", seed=seed).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))
    return model, opt, sched


def _steps(model, opt, sched, n):
    for _ in range(n):
        x = torch.randn(4, model.config.n_bins, 40)  # draws from the global RNG, which is restored too
        loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 3]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


def test_resume_equals_uninterrupted(tmp_path):
    torch.manual_seed(0)
    model, opt, sched = _setup(0)
    _steps(model, opt, sched, 2)
    path = ckpt.save_training_state(tmp_path / "state.pt", state={"epoch": 2, "history": [{"loss": 1.5}]},
                                    model=model, optimizer=opt, scheduler=sched)
    _steps(model, opt, sched, 2)
    want = {k: v.clone() for k, v in model.state_dict().items()}

    torch.manual_seed(123)  # a different process state, all of it restored from the file
    model2, opt2, sched2 = _setup(1)
    state = ckpt.load_training_state(path, model=model2, optimizer=opt2, scheduler=sched2)
    assert state == {"epoch": 2, "history": [{"loss": 1.5}]}
    _steps(model2, opt2, sched2, 2)
    got = model2.state_dict()
    assert all(torch.equal(got[k], want[k]) for k in want)
    assert torch.load(path, weights_only=True)["format"] == "genrescope-training-state"


def test_training_state_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such training-state"):
        ckpt.load_training_state(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a zip at all")
    with pytest.raises(CheckpointError, match="corrupt or unsafe"):
        ckpt.load_training_state(tmp_path / "junk.pt")
    torch.save({"format": "genrescope-training-state", "obj": ckpt.Path("x")}, tmp_path / "unsafe.pt")
    with pytest.raises(CheckpointError, match="corrupt or unsafe"):  # weights_only refuses arbitrary classes
        ckpt.load_training_state(tmp_path / "unsafe.pt")
    model, opt, sched = _setup(0)
    path = ckpt.save_training_state(tmp_path / "s.pt", state={}, model=model, optimizer=opt)
    with pytest.raises(CheckpointError, match="holds no scheduler"):
        ckpt.load_training_state(path, scheduler=sched)
    with pytest.raises(CheckpointError, match="model state does not fit"):
        ckpt.load_training_state(path, model=make("cnn-lstm"))
