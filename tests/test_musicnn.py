"""The musicnn port: TF reference outputs, ONNX parity, strict loading, ONNX metadata.

tests/data/musicnn_reference.npz holds 6 log-mel patches of openly licensed recordings
(librosa's example clips: Brahms' Hungarian Dance no. 5 by the US Army Strings, public
domain; Kevin MacLeod's "Vibe Ace" and Karissa Hobbs' "Let's Go Fishin'", CC-BY 3.0; the
exact sources are in its ``info``) as musicnn==0.1.0 computes them, with the tag
probabilities and embeddings the original TensorFlow graphs give for them. It was written
by ``tools/convert_musicnn.py --write-reference``; no TensorFlow is needed here.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from safetensors.torch import load_file, save_file  # noqa: E402

from genrescope.config import MUSICNN_FEATURES, FeatureConfig  # noqa: E402
from genrescope.errors import CheckpointError  # noqa: E402
from genrescope.features.spectrogram import log_mel  # noqa: E402
from genrescope.config import pretrained_dir  # noqa: E402
from genrescope.models.musicnn import (pretrained_taggers, Musicnn, MusicnnVGG, _tf_same_pad,  # noqa: E402
                                       load_musicnn)
from genrescope.features.windows import slice_windows  # noqa: E402

REFERENCE = Path(__file__).parent / "data" / "musicnn_reference.npz"


@pytest.fixture(scope="module")
def reference():
    with np.load(REFERENCE) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module", params=pretrained_taggers())
def pretrained(request):
    model, config = load_musicnn(request.param)
    return request.param, model, config


@pytest.fixture(scope="module")
def sessions():
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return {n: ort.InferenceSession(str(pretrained_dir() / n / "model.onnx"), opts, providers=["CPUExecutionProvider"])
            for n in pretrained_taggers()}


def _torch(model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        p, e = model(torch.from_numpy(x), return_embeddings=True)
    return p.numpy(), e.numpy()


def test_reference_fixture_is_small_and_documented(reference):
    assert REFERENCE.stat().st_size < 1_000_000
    assert reference["patches"].shape == (6, 96, 187) and reference["patches"].dtype == np.float32
    info = json.loads(str(reference["info"]))
    assert len(info["sources"]) == 6 and all("licence" in s for s in info["sources"])


def test_matches_tensorflow(pretrained, reference):
    name, model, _ = pretrained
    p, e = _torch(model, reference["patches"])
    assert np.abs(p - reference[f"probs/{name}"]).max() < 1e-4
    assert np.abs(e - reference[f"emb/{name}"]).max() < 1e-4


def test_onnx_matches_pytorch(pretrained, reference, sessions):
    name, model, _ = pretrained
    rng = np.random.default_rng(0)
    random = (rng.standard_normal((3, 96, 187)) + 2.0).astype(np.float32)
    for x in (reference["patches"], reference["patches"][:1], random):  # the batch axis is dynamic
        p, e = _torch(model, x)
        po, eo = sessions[name].run(["probabilities", "embeddings"], {"features": x})
        assert np.abs(po - p).max() < 1e-5
        assert np.abs(eo - e).max() < 1e-5 * max(1.0, np.abs(e).max())


def test_onnx_metadata_holds_labels_and_features(pretrained):
    name, _, config = pretrained
    meta = {p.key: p.value for p in onnx.load(str(pretrained_dir() / name / "model.onnx")).metadata_props}
    assert json.loads(meta["labels"]) == config["labels"] and len(config["labels"]) == 50
    assert FeatureConfig.from_dict(json.loads(meta["feature_config"])) == MUSICNN_FEATURES
    assert FeatureConfig.from_dict(config["features"]) == MUSICNN_FEATURES
    assert meta["licence"].startswith("ISC") and "musicnn==0.1.0" in meta["provenance"]
    assert meta["output_activation"] == "sigmoid" and meta["input_frames"] == "187"


def test_genrescope_onnx_runtime_wrapper_runs_it(reference):
    from genrescope.inference.onnx_model import OnnxModel

    m = OnnxModel(pretrained_dir() / "musicnn-msd" / "model.onnx", threads=1)
    assert m.labels[0] == "rock" and m.feature_config == MUSICNN_FEATURES and m.window_frames == 187
    p = m.predict_windows(reference["patches"])
    assert np.abs(p - reference["probs/musicnn-msd"]).max() < 1e-4


def test_label_lists():
    _, msd = load_musicnn("musicnn-msd")
    _, mtt = load_musicnn("vgg-mtt")
    assert msd["labels"][:5] == ["rock", "pop", "alternative", "indie", "electronic"]
    assert mtt["labels"][:5] == ["guitar", "classical", "slow", "techno", "strings"]
    assert (pretrained_dir() / "LICENSE-musicnn.txt").read_text().count("ISC") >= 1


def test_feature_path_to_tags():
    # genrescope's own feature path feeds the model: 187-frame windows of a 16 kHz signal
    assert MUSICNN_FEATURES.window_frames == 187 and MUSICNN_FEATURES.pad_mode == "reflect"
    t = np.arange(16000 * 7) / 16000
    y = (0.2 * np.sin(2 * np.pi * 440 * t) * (1 + np.sin(2 * np.pi * 2 * t))).astype(np.float32)
    windows, start_s, _ = slice_windows(log_mel(y, MUSICNN_FEATURES), MUSICNN_FEATURES)
    assert windows.shape == (3, 96, 187)
    model, _ = load_musicnn("musicnn-mtt")
    p, e = _torch(model, windows)
    assert p.shape == (3, 50) and e.shape == (3, 200) and np.all((p >= 0) & (p <= 1))


def test_input_layouts_and_tf_padding():
    assert _tf_same_pad(128) == (63, 64) and _tf_same_pad(7) == (3, 3) and _tf_same_pad(32) == (15, 16)
    x = torch.randn(2, 96, 187)
    for model in (Musicnn().eval(), MusicnnVGG().eval()):
        with torch.no_grad():
            assert torch.equal(model(x), model(x[:, None]))
    with pytest.raises(Exception, match="expects log-mel patches"):
        Musicnn()(torch.randn(2, 2, 96, 187))


# ---------------------------------------------------------------- strict loading
@pytest.fixture
def model_copy(tmp_path):
    dest = tmp_path / "musicnn-mtt"
    shutil.copytree(pretrained_dir() / "musicnn-mtt", dest)
    return dest


def _edit_weights(folder: Path, edit) -> None:
    state = load_file(str(folder / "weights.safetensors"))
    edit(state)
    save_file(state, str(folder / "weights.safetensors"))


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.pop("midend.2.conv.weight"), r"missing tensors \['midend.2.conv.weight'\]"),
    (lambda s: s.update({"extra.weight": torch.zeros(3)}), r"unexpected tensors \['extra.weight'\]"),
    (lambda s: s.update({"dense.weight": torch.zeros(200, 1505)}), r"dense.weight: \(200, 1505\)"),
    (lambda s: s.update({"classifier.bias": torch.zeros(50, dtype=torch.float64)}), "classifier.bias.*float64"),
    (lambda s: s.update({"pool_bn.running_var": torch.full((1506,), float("nan"))}), "non-finite"),
])
def test_wrong_weights_raise_checkpoint_error(model_copy, edit, message):
    _edit_weights(model_copy, edit)
    with pytest.raises(CheckpointError, match=message):
        load_musicnn(model_copy)


def test_broken_files_raise_checkpoint_error(model_copy, tmp_path):
    (model_copy / "weights.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_musicnn(model_copy)
    (model_copy / "weights.safetensors").unlink()
    with pytest.raises(CheckpointError, match="missing"):
        load_musicnn(model_copy)
    with pytest.raises(CheckpointError, match="not a pretrained model folder"):
        load_musicnn(tmp_path / "nowhere")


def test_bad_config_raises_checkpoint_error(model_copy):
    cfg = json.loads((model_copy / "config.json").read_text())
    for change, message in (({"architecture": "resnet"}, "unknown musicnn architecture"),
                            ({"labels": cfg["labels"][:-1]}, "49 labels for 50 outputs"),
                            ({"hparams": {"n_classes": 50, "widht": 1}}, "bad hyper-parameters"),
                            ({"features": {**cfg["features"], "sr": -1}}, "malformed")):
        (model_copy / "config.json").write_text(json.dumps({**cfg, **change}))
        with pytest.raises(CheckpointError, match=message):
            load_musicnn(model_copy)


# ---------------------------------------------------------------- the export: folded, pruned, fused
def test_folded_tagger_computes_what_the_tagger_computes_with_fewer_filters(reference):
    """Signs folded into the weights and dead filters dropped leave the numbers alone (on the
    real patches and on louder random ones) while dropping most of musicnn-msd's front end."""
    from genrescope.models.musicnn_folded import FoldedMusicnn

    rng = np.random.default_rng(3)
    x = np.concatenate([reference["patches"], rng.uniform(0, 6, (4, 96, 187))]).astype(np.float32)
    live = {}
    for name in ("musicnn-msd", "musicnn-mtt"):
        model, _ = load_musicnn(name)
        folded = FoldedMusicnn(model)
        with torch.no_grad():
            (p, e), (fp, fe) = model(torch.from_numpy(x), return_embeddings=True), folded(torch.from_numpy(x))
        assert float((p - fp).abs().max()) < 1e-5 and float((e - fe).abs().max()) < 1e-4
        live[name] = folded.live_filters
    assert sum(live["musicnn-msd"]) < 0.2 * (2 * 204 + 3 * 51)  # 64 of 561 front-end filters live
    assert live["musicnn-msd"] != live["musicnn-mtt"]


def _producers(proto) -> dict[str, str]:
    return {o: n.op_type for n in proto.graph.node for o in n.output}


@pytest.mark.parametrize("name", ["musicnn-msd", "musicnn-mtt", "musicnn", "genre10"])
def test_shipped_graphs_have_no_multiply_on_a_convolution_output(name):
    """The front end's sign flip is in the weights: no Mul reads a Conv's output."""
    proto = onnx.load(str(pretrained_dir() / name / "model.onnx"))
    made_by = _producers(proto)
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    assert convs
    assert not [n.name for n in proto.graph.node if n.op_type == "Mul" and any(made_by.get(i) == "Conv"
                                                                                 for i in n.input)]


@pytest.mark.parametrize("name", ["musicnn", "genre10"])
def test_one_graph_models_match_the_unfolded_composition(name, reference):
    """The shipped one-graph models on ONNX Runtime give what the PyTorch taggers (as converted,
    unfolded), their label merge and the head give, to the export's parity tolerance."""
    from genrescope.inference.onnx_model import OnnxModel
    from genrescope.training.export import PARITY_TOLERANCE
    from genrescope.training.fused_export import fused_reference

    head = pretrained_dir() / name / "checkpoint.safetensors"
    ref = fused_reference("musicnn", head if head.is_file() else None)
    om = OnnxModel(pretrained_dir() / name / "model.onnx")
    x = np.concatenate([reference["patches"], np.random.default_rng(4).uniform(0, 4, (3, 96, 187))]).astype(np.float32)
    got = om.run(x)
    with torch.no_grad():
        want = [o.numpy() for o in ref(torch.from_numpy(x))]
    assert list(got) == om.outputs and len(want) == len(om.outputs)
    for out, w in zip(om.outputs, want):
        assert np.abs(got[out] - w).max() < (PARITY_TOLERANCE if out != "embeddings" else 1e-3), out
    if name == "genre10":
        assert om.tag_labels == ref.tag_labels and len(om.labels) == 10
