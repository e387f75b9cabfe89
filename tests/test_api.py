"""The Python API: genrescope.load_model(...).predict(...) and its Result."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import genrescope
from genrescope.commands import main

DEMO = Path(__file__).resolve().parents[1] / "demo" / "vibe_ace_excerpt.ogg"


@pytest.fixture(scope="module")
def model():
    return genrescope.load_model()


@pytest.fixture(scope="module")
def result(model):
    return model.predict(DEMO)


def test_import_is_light():
    code = ("import sys, genrescope\n"
            "heavy = [m for m in ('numpy', 'onnxruntime', 'torch', 'scipy') if m in sys.modules]\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_default_model_answers_one_distribution(model, result):
    assert model.name == "genre10" and len(model.labels) == 10
    labels = [g for g, _ in result.genres]
    probs = np.array([p for _, p in result.genres])
    assert sorted(labels) == sorted(model.labels)
    assert np.all(np.diff(probs) <= 0) and abs(probs.sum() - 1) < 1e-4
    tl = result.timeline
    assert tl.probs.shape == (len(tl.start_s), 10) and list(tl.labels) == model.labels
    # the track answer is the mean of the timeline's windows
    np.testing.assert_allclose(tl.probs.mean(axis=0)[model.labels.index(labels[0])], probs[0], atol=1e-5)
    assert result.tags and result.warnings == []


@pytest.mark.parametrize("flags,kw", [([], {}),
                                       (["--timeline", "--top", "0", "--tags"], {"timeline": True, "top": 0,
                                                                                 "tags": True})])
def test_to_dict_is_the_cli_json(result, capsys, flags, kw):
    assert main(["predict", str(DEMO), "--format", "json", "--no-progress", *flags]) == 0
    cli = json.loads(capsys.readouterr().out)[0]
    api = json.loads(json.dumps(result.to_dict(**kw)))
    api["path"] = cli["path"]  # the same file, given by a different spelling of its path
    assert api == cli


def test_array_in_equals_file_in(model, result):
    y, sr = sf.read(DEMO, dtype="float32", always_2d=True)  # stereo at the file's own rate
    r = model.predict(y, sr=sr)
    assert [g for g, _ in r.genres[:3]] == [g for g, _ in result.genres[:3]]
    np.testing.assert_allclose(r.timeline.probs, result.timeline.probs, atol=2e-3)


def test_array_at_the_model_rate_and_silence(model):
    rng = np.random.default_rng(0)
    r = model.predict(np.zeros(model.sr * 5, np.float32), sr=model.sr)
    assert any("silent" in w for w in r.warnings)
    r = model.predict(0.1 * rng.standard_normal(model.sr * 5), sr=model.sr)  # float64 is fine
    assert len(r.genres) == 10


@pytest.mark.parametrize("call,match", [
    (lambda m: m.predict(np.zeros(16000, np.float32)), "sample rate"),
    (lambda m: m.predict(np.zeros(16000, np.int16), sr=16000), "integer samples"),
    (lambda m: m.predict(np.zeros((2, 48000), np.float32), sr=16000), "channels, samples"),
    (lambda m: m.predict(np.full(32000, np.nan, np.float32), sr=16000), "NaN"),
    (lambda m: m.predict(DEMO, sr=16000), "sr is for arrays"),
    (lambda m: m.predict("no/such/file.mp3"), "file.mp3"),
    (lambda m: m.predict(np.zeros(100, np.float32), sr=16000), "at least 1.00 s"),
])
def test_bad_input_is_a_clear_error(model, call, match):
    with pytest.raises(genrescope.GenrescopeError, match=match):
        call(model)


def test_unknown_model_is_a_clear_error():
    with pytest.raises(genrescope.GenrescopeError):
        genrescope.load_model("no-such-model")
