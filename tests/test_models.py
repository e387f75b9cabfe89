"""The model zoo: shapes, variable length, learning, determinism, configs, registry."""
import json
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from genrescope.features import spectrogram as features  # noqa: E402
from genrescope.commands import main  # noqa: E402
from genrescope.errors import GenrescopeError  # noqa: E402
from genrescope.models import (BUILTIN, build_model, check_features, config_from_dict, default_config,  # noqa: E402
                               is_available, model_names)

from helpers.models import FC, N_CLASSES, T, batch, feature_inputs, make  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def test_registry_lists_every_family_and_musicnn_lazily():
    names = model_names()
    for n in ("parallel-cnn-bigru", "cnn-lstm", "cnn-gru", "mfcc-cnn", "features-mlp", "timeline-cnn",
              "parallel-cnn-bilstm", "resnet-chunk", "musicnn", "musicnn-vgg"):
        assert n in names
    assert set(BUILTIN) <= set(names) and "musicnn" not in BUILTIN
    with pytest.raises(GenrescopeError, match="unknown model 'nope'.*resnet-chunk"):
        build_model("nope")


def test_cli_models_lists_param_counts_without_musicnn(monkeypatch, capsys):
    # a missing musicnn module is tolerated: listed as unavailable, not an error
    monkeypatch.setitem(sys.modules, "genrescope.models.musicnn", None)
    assert not is_available("musicnn")
    with pytest.raises(GenrescopeError, match="not available"):
        build_model("musicnn")
    assert main(["models", "--format", "json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(BUILTIN)
    assert all(r["params"] > 1000 for r in rows.values())
    assert rows["parallel-cnn-bilstm"]["kind"] == "stft" and rows["parallel-cnn-bilstm"]["n_bins"] == 1025
    assert rows["mfcc-cnn"]["n_bins"] == 20 and rows["features-mlp"]["n_bins"] == 57
    assert rows["timeline-cnn"]["window_s"] is None and rows["timeline-cnn"]["frames"]
    assert rows["resnet-chunk"]["window_s"] == 3.0


@pytest.mark.parametrize("name", BUILTIN)
def test_output_shape_on_its_input_kind(name):
    model = make(name).eval()
    cfg = model.config
    if cfg.kind != "table":
        assert cfg.n_bins == features.n_bins(FC, cfg.kind)
    with torch.no_grad():
        out = model(batch(model))
    assert out.shape == (3, N_CLASSES) and out.dtype == torch.float32 and torch.isfinite(out).all()


@pytest.mark.parametrize("name", BUILTIN)
def test_variable_length(name):
    model = make(name).eval()
    if not model.variable_length:
        assert model.config.kind == "table"
        return
    with torch.no_grad():
        for t in (max(model.min_frames, 40), T, 2 * T + 7):
            assert model(batch(model, t=t, b=2)).shape == (2, N_CLASSES)


def test_frame_model_forward_is_mean_of_frame_logits():
    model = make("timeline-cnn").eval()
    x = batch(model, t=3 * T)
    with torch.no_grad():
        frames = model.forward_frames(x)
        clip = model(x)
    assert frames.shape == (3, (3 * T) // model.frame_stride, N_CLASSES)
    torch.testing.assert_close(clip, frames.mean(dim=1))
    assert model.config.window_s is None


@pytest.mark.parametrize("name", BUILTIN)
def test_a_few_steps_make_the_loss_fall(name):
    torch.manual_seed(0)
    model = make(name).train()
    x = batch(model, b=8, seed=1)
    if model.config.kind != "table":
        x = 20 * x - 60  # dB-like values: the models normalise their input themselves
    y = torch.arange(8) % N_CLASSES
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(12):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < 0.85 * losses[0], losses


@pytest.mark.parametrize("name", BUILTIN)
def test_same_seed_same_model(name):
    before = torch.get_rng_state()
    a, b, c = make(name, seed=7).eval(), make(name, seed=7).eval(), make(name, seed=8).eval()
    assert torch.equal(torch.get_rng_state(), before)  # seeding does not touch the global generator
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())
    x = batch(a)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


@pytest.mark.parametrize("name", BUILTIN)
def test_config_json_round_trip(name):
    cfg = make(name).config
    again = config_from_dict(name, json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and hash(again) == hash(cfg)


def test_one_class_serves_two_names():
    lstm, gru = make("cnn-lstm"), make("cnn-gru")
    assert type(lstm) is type(gru)
    assert isinstance(lstm.rnn.rnn, torch.nn.LSTM) and isinstance(gru.rnn.rnn, torch.nn.GRU)
    bigru, bilstm = make("parallel-cnn-bigru"), make("parallel-cnn-bilstm")
    assert type(bigru) is type(bilstm) and bilstm.config.kind == "stft" and bilstm.config.merge == "add"
    assert bigru.head[-1].in_features == 256 + 128


def test_config_errors():
    with pytest.raises(GenrescopeError, match="merge='add'"):
        default_config("parallel-cnn-bilstm", feature_config=FC, rnn_hidden=64)
    with pytest.raises(GenrescopeError, match="n_bins"):
        default_config("parallel-cnn-bigru", n_bins=8)
    with pytest.raises(GenrescopeError, match="cell"):
        default_config("cnn-lstm", cell="rnn")
    with pytest.raises(GenrescopeError, match="unknown fields"):
        config_from_dict("resnet-chunk", {"n_classes": 3, "layers": 9})
    with pytest.raises(GenrescopeError, match="bad config values"):
        default_config("resnet-chunk", no_such_field=1)
    cfg = default_config("resnet-chunk", feature_config=FC)
    check_features(cfg, FC)
    with pytest.raises(GenrescopeError, match="bins"):
        check_features(cfg, FC.replace(n_mels=64))
    with pytest.raises(GenrescopeError, match="window_s"):
        check_features(cfg, FC.replace(window_s=3.0))


def test_window_follows_the_feature_config_unless_whole_song():
    assert default_config("resnet-chunk", feature_config=FC.replace(window_s=3.5)).window_s == 3.5
    assert default_config("timeline-cnn", feature_config=FC).window_s is None
    assert default_config("mfcc-cnn", feature_config=FC).n_bins == 13


def test_mlp_carries_its_standardization():
    model = make("features-mlp").eval()
    rng = np.random.default_rng(0)
    mean, std = rng.normal(1000, 10, 57), rng.uniform(1, 50, 57)
    raw = torch.from_numpy(rng.normal(mean, std, (5, 57)).astype(np.float32))
    with torch.no_grad():
        plain = model((raw - torch.tensor(mean, dtype=torch.float32)) / torch.tensor(std, dtype=torch.float32))
        model.set_standardization(mean, std)
        torch.testing.assert_close(model(raw), plain)
    assert {"mean", "std"} <= set(model.state_dict())
    with pytest.raises(GenrescopeError, match="shapes"):
        model.set_standardization(mean[:3], std)
