"""ONNX export: parity with PyTorch at several lengths, self-describing metadata, a torch-free runner."""
import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from genrescope.models.checkpoint import save_checkpoint  # noqa: E402
from genrescope.commands import main  # noqa: E402
from genrescope.errors import CheckpointError, GenrescopeError  # noqa: E402
from genrescope.training.export import PARITY_TOLERANCE, check_parity, export_onnx, parity_inputs  # noqa: E402
from genrescope.models import BUILTIN  # noqa: E402
from genrescope.inference.onnx_model import OnnxModel  # noqa: E402

from helpers.models import FC, LABELS, feature_inputs, trained_like  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """name -> (model, OnnxModel), exported once per module."""
    cache = {}
    folder = tmp_path_factory.mktemp("onnx")

    def get(name):
        if name not in cache:
            model = trained_like(name)
            path = export_onnx(model, folder / f"{name}.onnx", feature_config=FC, labels=LABELS, model_name=name)
            cache[name] = model, OnnxModel(path, threads=1)
        return cache[name]

    return get


@pytest.mark.parametrize("name", BUILTIN)
def test_parity_on_random_input_at_several_lengths(name, exported):
    model, om = exported(name)
    inputs = parity_inputs(model, FC)
    if model.variable_length:
        assert len({x.shape[2] for x in inputs}) == 3  # the dynamic time axis is exercised
    diff = check_parity(om, model, inputs)
    print(f"\nparity random {name}: {diff:.2e}")
    assert diff < PARITY_TOLERANCE


@pytest.mark.parametrize("name", BUILTIN)
def test_parity_on_real_features(name, exported):
    model, om = exported(name)
    inputs = feature_inputs(model)
    diff = check_parity(om, model, inputs)
    top = om.predict_windows(inputs[0]).max(axis=1).mean()
    print(f"\nparity features {name}: {diff:.2e} (mean top probability {top:.2f})")
    assert diff < PARITY_TOLERANCE


@pytest.mark.parametrize("name", BUILTIN)
def test_metadata_and_batched_prediction(name, exported):
    model, om = exported(name)
    cfg = model.config
    assert om.model_name == name and om.labels == LABELS and om.feature_config == FC
    assert om.input_kind == cfg.kind and om.n_bins == cfg.n_bins and om.window_s == cfg.window_s
    assert om.model_config == cfg.to_dict() | {k: list(v) for k, v in cfg.to_dict().items() if isinstance(v, tuple)}
    assert om.dynamic_time == model.variable_length and om.min_frames == model.min_frames
    x = feature_inputs(model)[0]
    x = np.concatenate([x, x[:1] + 1.0])  # an odd count, split into batches of 2
    probs = om.predict_windows(x, batch_size=2)
    assert probs.shape == (len(x), len(LABELS)) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probs, om.predict_windows(x), atol=1e-6)
    assert om.predict_windows(x[:0]).shape == (0, len(LABELS))
    with pytest.raises(GenrescopeError, match="expected"):
        om.predict_windows(np.zeros((2, cfg.n_bins + 1, FC.window_frames), np.float32))


def test_frame_output(exported):
    model, om = exported("timeline-cnn")
    assert om.has_frames and om.window_s is None
    assert om.frame_hop_s == pytest.approx(model.frame_stride * FC.hop_length / FC.sr)
    song = feature_inputs(model)[1][0]  # (n_bins, T)
    frames = om.predict_frames(song)
    assert frames.shape == (song.shape[1] // model.frame_stride, len(LABELS))
    with torch.no_grad():
        want = torch.softmax(model.forward_frames(torch.from_numpy(song[None])), -1)[0].numpy()
    np.testing.assert_allclose(frames, want, atol=PARITY_TOLERANCE)
    _, plain = exported("mfcc-cnn")
    assert not plain.has_frames
    with pytest.raises(GenrescopeError, match="no per-frame output"):
        plain.predict_frames(song)


def test_static_time_axis(tmp_path):
    model = trained_like("mfcc-cnn")
    path = export_onnx(model, tmp_path / "m.onnx", feature_config=FC, labels=LABELS, model_name="mfcc-cnn",
                       dynamic_time=False)
    om = OnnxModel(path, threads=1)
    assert not om.dynamic_time and om.input_frames == FC.window_frames
    assert om.session.get_inputs()[0].shape == ["batch", FC.n_mfcc, FC.window_frames]
    assert check_parity(om, model, parity_inputs(model, FC, dynamic_time=False)) < PARITY_TOLERANCE
    with pytest.raises(GenrescopeError, match="exactly T="):
        om.predict_windows(np.zeros((1, FC.n_mfcc, FC.window_frames + 1), np.float32))


def test_export_needs_its_metadata(tmp_path):
    model = trained_like("mfcc-cnn")
    with pytest.raises(GenrescopeError, match="needs feature_config, labels and model_name"):
        export_onnx(model, tmp_path / "m.onnx", feature_config=FC, model_name="mfcc-cnn")
    with pytest.raises(GenrescopeError, match="bins"):
        export_onnx(model, tmp_path / "m.onnx", feature_config=FC.replace(n_mfcc=20), labels=LABELS,
                    model_name="mfcc-cnn")
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_onnx_model_rejects_foreign_files(tmp_path):
    with pytest.raises(CheckpointError, match="no such ONNX"):
        OnnxModel(tmp_path / "none.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"junk" * 100)
    with pytest.raises(CheckpointError, match="not a readable ONNX"):
        OnnxModel(tmp_path / "junk.onnx")
    torch.onnx.export(torch.nn.Linear(3, 2), (torch.zeros(1, 3),), str(tmp_path / "plain.onnx"), dynamo=False)
    with pytest.raises(CheckpointError, match="not a genrescope ONNX"):
        OnnxModel(tmp_path / "plain.onnx")


def test_cli_export_from_checkpoint_and_torch_free_inference(tmp_path, capsys):
    model = trained_like("cnn-lstm")
    ckpt = save_checkpoint(tmp_path / "best.safetensors", model, model_name="cnn-lstm", feature_config=FC,
                           labels=LABELS, extra={"dataset": "synthetic"})
    out = tmp_path / "exported.onnx"
    assert main(["export", str(ckpt), "--onnx", str(out)]) == 0
    text = capsys.readouterr().out
    assert "wrote" in text and "parity with PyTorch" in text and "(ok)" in text
    x = feature_inputs(model)[0]
    code = (
        "import sys, json, numpy as np\n"
        "from genrescope.inference.onnx_model import OnnxModel\n"
        "from genrescope.models.checkpoint import read_metadata\n"
        f"om = OnnxModel({str(out)!r})\n"
        f"p = om.predict_windows(np.load({str(tmp_path / 'x.npy')!r}))\n"
        f"meta = read_metadata({str(ckpt)!r})\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'p': p.tolist(), 'dataset': om.provenance['dataset'],"
        " 'name': meta['model_name']}))\n")
    np.save(tmp_path / "x.npy", x)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["torch"] is False and got["dataset"] == "synthetic" and got["name"] == "cnn-lstm"
    with torch.no_grad():
        want = torch.softmax(model(torch.from_numpy(x)), -1).numpy()
    np.testing.assert_allclose(np.array(got["p"]), want, atol=PARITY_TOLERANCE)
    # the default output path sits next to the checkpoint
    assert main(["export", str(ckpt), "--no-check"]) == 0
    assert (tmp_path / "best.onnx").is_file()
