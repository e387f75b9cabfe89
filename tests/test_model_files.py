"""Model files are input too: hostile ONNX exports and checkpoints get a one-line CheckpointError.

Each case starts from a shipped model (``gtzan-features``: a small table MLP, both as ONNX
export and as checkpoint) and changes one thing in its metadata or weights.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from genrescope.config import DEFAULT_FEATURES, FeatureConfig
from genrescope.errors import CheckpointError, GenrescopeError
from genrescope.inference.registry import pretrained_root

SHIPPED = pretrained_root() / "gtzan-features"


# ------------------------------------------------------------------ FeatureConfig read from a file
@pytest.mark.parametrize("field, value", [
    ("n_fft", 2 ** 28), ("hop_length", 0), ("sr", 10 ** 9), ("n_mels", 100_000), ("window_s", 1e7),
    ("window_hop_s", math.nan), ("power", math.inf), ("log_floor", 0.0), ("top_db", -1.0),
    ("n_mfcc", 10_000), ("sr", "22050"), ("center", "yes"), ("hop_length", 512.5), ("n_fft", True),
])
def test_feature_config_fields_are_bounded(field, value):
    d = {**DEFAULT_FEATURES.to_dict(), field: value}
    with pytest.raises(GenrescopeError, match=rf"FeatureConfig: .*{field}"):
        FeatureConfig.from_dict(d)


def test_feature_configs_that_ship_are_within_bounds():
    from genrescope.config import MUSICNN_FEATURES

    for cfg in (DEFAULT_FEATURES, MUSICNN_FEATURES):
        assert FeatureConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


# ------------------------------------------------------------------ ONNX exports
onnx = pytest.importorskip("onnx", reason="rewriting ONNX metadata needs the onnx package (train extra)")


def _tampered_onnx(tmp_path: Path, **changes) -> Path:
    model = onnx.load(str(SHIPPED / "model.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    for key, value in changes.items():
        meta[key] = value if isinstance(value, str) else json.dumps(value)
    del model.metadata_props[:]
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    out = tmp_path / "tampered.onnx"
    onnx.save(model, str(out))
    return out


def _meta(key: str):
    return json.loads({p.key: p.value for p in onnx.load(str(SHIPPED / "model.onnx")).metadata_props}[key])


@pytest.mark.parametrize("changes, words", [
    ({"format_version": "one"}, "format_version='one' is not JSON"),
    ({"format_version": "2"}, "export format 2 is newer"),
    ({"labels": [f"g{i}" for i in range(4)]}, "4 labels for a graph with 10 outputs"),
    ({"labels": '"rock"'}, "labels must be a list"),
    ({"feature_config": {**DEFAULT_FEATURES.to_dict(), "n_fft": 2 ** 28}}, "n_fft=268435456 is outside"),
    ({"window_s": "NaN"}, "window_s=nan is not a number"),
    ({"n_bins": 1 << 30}, "n_bins=1073741824 is not an integer"),
    ({"input_kind": "pickle"}, "input_kind 'pickle'"),
    ({"outputs": ["embeddings"]}, "the first output must be 'probabilities'"),
])
def test_hostile_onnx_metadata(tmp_path, changes, words):
    from genrescope.inference.onnx_model import OnnxModel

    path = _tampered_onnx(tmp_path, **changes)
    with pytest.raises(CheckpointError, match="malformed genrescope metadata") as info:
        OnnxModel(path)
    assert words in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)


def test_onnx_labels_are_checked_against_the_graph(tmp_path):
    from genrescope.inference.onnx_model import OnnxModel

    assert len(_meta("labels")) == 10
    OnnxModel(_tampered_onnx(tmp_path))  # untouched: loads


def test_backbone_comes_only_by_shipped_name(tmp_path):
    from genrescope.inference.runtimes import load_inference_model

    other = pretrained_root() / "musicnn-mtt" / "model.onnx"  # a real export, given as a path
    path = _tampered_onnx(tmp_path, provenance={"backbone": str(other)})
    with pytest.raises(CheckpointError, match="is not a shipped model"):
        load_inference_model(path)


def test_cli_reports_a_hostile_model_in_one_line(tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    from genrescope.commands import main

    song = tmp_path / "song.wav"
    sf.write(song, np.zeros(22050 * 3, np.float32) + 0.01, 22050)
    model = _tampered_onnx(tmp_path, format_version="x")
    code = main(["predict", "--model", str(model), str(song)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "malformed genrescope metadata" in err[0]


def _weights_edited(tmp_path: Path, where: str, value: float) -> Path:
    """The shipped export with one weight set to ``value``: in an initializer (raw bytes, as
    exporters write them), or with that tensor moved into a Constant node (raw or float_data)."""
    from onnx import helper, numpy_helper

    model = onnx.load(str(SHIPPED / "model.onnx"))
    g = model.graph
    i = next(k for k, t in enumerate(g.initializer)
             if t.data_type == onnx.TensorProto.FLOAT and numpy_helper.to_array(t).size > 1)
    name = g.initializer[i].name
    w = numpy_helper.to_array(g.initializer[i]).copy()
    w.flat[3] = value
    if where == "initializer":
        g.initializer[i].CopyFrom(numpy_helper.from_array(w, name))
    else:
        del g.initializer[i]
        t = (helper.make_tensor(name, onnx.TensorProto.FLOAT, w.shape, w.ravel().tolist()) if where == "float_data"
             else numpy_helper.from_array(w, name))
        g.node.insert(0, helper.make_node("Constant", [], [name], value=t))
    out = tmp_path / f"{where}.onnx"
    onnx.save(model, str(out))
    return out


@pytest.mark.parametrize("where", ["initializer", "constant", "float_data"])
def test_onnx_non_finite_weights(tmp_path, where):
    """A NaN or infinity in a graph's weights is refused when it loads (read from the protobuf:
    the plain install has no onnx package); the same edit with a finite value loads."""
    from genrescope.inference.backends import available_backends
    from genrescope.inference.runtimes import load_inference_model

    for value in (math.nan, math.inf, -math.inf):
        path = _weights_edited(tmp_path, where, value)
        for backend in available_backends():
            with pytest.raises(CheckpointError, match="non-finite weights") as info:
                load_inference_model(path, backend=backend)
            assert str(path) in str(info.value) and "\n" not in str(info.value)
    load_inference_model(_weights_edited(tmp_path, where, 0.5))


# ------------------------------------------------------------------ checkpoints
def _tampered_checkpoint(tmp_path: Path, *, tensors=None, **meta_changes) -> Path:
    pytest.importorskip("torch")
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    src = SHIPPED / "checkpoint.safetensors"
    with safe_open(str(src), "pt") as f:
        meta = dict(f.metadata())
    state = load_file(str(src))
    if tensors is not None:
        tensors(state)
        meta.pop("weights_sha256", None)  # a forger recomputes it or drops it
    for key, value in meta_changes.items():
        meta[key] = json.dumps(value)
    out = tmp_path / "tampered.safetensors"
    save_file(state, str(out), metadata=meta)
    return out


def test_checkpoint_shapes_are_checked_before_the_model_is_built(tmp_path):
    from safetensors import safe_open

    from genrescope.models.checkpoint import load_checkpoint

    with safe_open(str(SHIPPED / "checkpoint.safetensors"), "pt") as f:
        config = json.loads(f.metadata()["model_config"])
    # a 2^18 x 2^18 layer is 256 GiB of float32: built for real, this would fail to allocate
    path = _tampered_checkpoint(tmp_path, model_config={**config, "hidden": [2 ** 18, 2 ** 18]})
    with pytest.raises(CheckpointError, match="weights do not fit the model described"):
        load_checkpoint(path)


def test_checkpoint_non_finite_weights(tmp_path):
    from genrescope.models.checkpoint import load_checkpoint

    def poison(state):
        name = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
        state[name].view(-1)[0] = float("nan")

    with pytest.raises(CheckpointError, match="non-finite weights"):
        load_checkpoint(_tampered_checkpoint(tmp_path, tensors=poison))


def test_checkpoint_feature_config_is_bounded(tmp_path):
    from genrescope.models.checkpoint import load_checkpoint

    fc = {**DEFAULT_FEATURES.to_dict(), "n_fft": 2 ** 28}
    with pytest.raises(CheckpointError, match="n_fft=268435456 is outside"):
        load_checkpoint(_tampered_checkpoint(tmp_path, feature_config=fc))


def test_musicnn_weights_through_the_torch_runtime(tmp_path):
    """``--runtime torch`` on a converted tagger (weights.safetensors) refuses non-finite
    weights (models.weights_check), and a config.json describing a huge layer costs no memory:
    the model is built on the meta device until the weights' shapes fit."""
    import shutil

    pytest.importorskip("torch")
    from safetensors.torch import load_file, save_file

    from genrescope.inference.runtimes import load_inference_model

    folder = tmp_path / "tagger"
    shutil.copytree(pretrained_root() / "musicnn-mtt", folder)
    weights = folder / "weights.safetensors"
    good = load_file(str(weights))
    state = {k: v.clone() for k, v in good.items()}
    state["dense.weight"].view(-1)[7] = float("inf")
    save_file(state, str(weights))
    with pytest.raises(CheckpointError, match="non-finite weights .* in dense.weight"):
        load_inference_model(weights, runtime="torch")
    save_file(good, str(weights))
    cfg = json.loads((folder / "config.json").read_text())
    huge = {**cfg, "hparams": {**cfg["hparams"], "backend_units": 2 ** 17}}  # an 800 MB dense layer, if built
    (folder / "config.json").write_text(json.dumps(huge))
    with pytest.raises(CheckpointError, match="dense.weight"):
        load_inference_model(weights, runtime="torch")


def test_untouched_checkpoint_loads(tmp_path):
    from genrescope.models.checkpoint import load_checkpoint

    model, info = load_checkpoint(_tampered_checkpoint(tmp_path))
    assert len(info["labels"]) == 10 and not model.training
