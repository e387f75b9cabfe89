"""Inference backends: OpenVINO (float32, bfloat16) against ONNX Runtime on real music, the
precision every prediction states, bad choices, and ensemble members run side by side.

The parity bounds are on track aggregates (the answer every front end shows), measured on
the 25 GTZAN clips and librosa examples of ../shared/data with the default ``musicnn``
ensemble: OpenVINO float32 moved no track probability by more than 1e-6, bfloat16 by at
most 0.0055 (mean 0.0002), with the top genre unchanged on all 25 files.
"""
import json
import sys
import threading

import numpy as np
import pytest

from conftest import SHARED_DATA
from genrescope.errors import GenrescopeError
from genrescope.inference import backends
from genrescope.inference.ensemble import ensemble
from genrescope.inference.inference_model import InferenceModel
from genrescope.inference.predict import Predictor

#: |delta p| allowed on any track-level probability, by precision
TRACK_BOUND = {"fp32": 1e-4, "bf16": 0.02}
CLIPS = ("gtzan/clips/blues/blues.00000.wav", "gtzan/clips/classical/classical.00001.wav",
         "gtzan/clips/disco/disco.00000.wav", "gtzan/clips/metal/metal.00000.wav")


def _needs_openvino(precision: str = "fp32") -> None:
    pytest.importorskip("openvino")
    if precision == "bf16" and not backends.cpu_has_bf16():
        pytest.skip("this CPU has no bfloat16 instructions")


@pytest.fixture(scope="module")
def reference():
    """ONNX Runtime's predictions of the real clips (the exact float32 reference)."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    pred = Predictor("default", threads=2, backend="onnxruntime")
    return {c: pred.predict(SHARED_DATA / c) for c in CLIPS}


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_openvino_matches_onnxruntime_on_real_music(reference, precision):
    _needs_openvino(precision)
    pred = Predictor("default", threads=2, backend="openvino", precision=precision)
    assert pred.model.precision == precision and pred.model.backend == "openvino"
    checked = 0
    for clip, ref in reference.items():
        got = pred.predict(SHARED_DATA / clip)
        assert got.precision == precision and ref.precision == "fp32"
        delta = np.abs(got.timeline.track() - ref.timeline.track())
        assert delta.max() <= TRACK_BOUND[precision], (clip, float(delta.max()))
        # the top genre must not move unless the reference itself is a near tie
        (g1, p1), (_, p2) = ref.genres[:2]
        if p1 - p2 > 2 * TRACK_BOUND[precision]:
            assert got.genres[0][0] == g1, (clip, ref.genres[:2], got.genres[:2])
            checked += 1
    assert checked >= len(CLIPS) - 1


def test_auto_precision_is_what_the_cpu_allows_and_is_stated(write_audio):
    _needs_openvino()
    path = write_audio("song.wav", duration=4.0)
    pred = Predictor("musicnn-msd", threads=1, backend="openvino")
    expected = "bf16" if backends.cpu_has_bf16() else "fp32"
    assert pred.model.precision == expected
    assert pred.predict(path).to_dict()["precision"] == expected
    assert Predictor("musicnn-msd", threads=1, backend="onnxruntime").predict(path).to_dict()["precision"] == "fp32"
    auto = Predictor("musicnn-msd", threads=1).predict(path).to_dict()  # the default: the fastest installed
    assert (auto["backend"], auto["precision"]) == ("openvino", expected)


def test_cli_states_the_precision_in_json(write_audio, capsys):
    from genrescope.commands import main

    _needs_openvino()
    path = write_audio("song.wav", duration=4.0)
    assert main(["predict", str(path), "--model", "musicnn-msd", "--backend", "openvino", "--precision", "fp32",
                 "--threads", "1", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["precision"] == "fp32"


@pytest.mark.parametrize("backend, precision, message", [
    ("onnxruntime", "bf16", "float32 only"),
    ("tensorrt", "auto", "backend must be one of"),
    ("openvino", "fp16", "precision must be one of"),
])
def test_impossible_choices_are_one_line_errors(backend, precision, message):
    with pytest.raises(GenrescopeError, match=message):
        Predictor("musicnn-msd", backend=backend, precision=precision)


def test_missing_openvino_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino now raises ImportError
    backends._ov_cached_core.cache_clear()
    try:
        with pytest.raises(GenrescopeError, match=r"genrescope\[fast\]"):
            Predictor("musicnn-msd", backend="openvino")
    finally:
        backends._ov_cached_core.cache_clear()


def test_openvino_session_serves_several_threads():
    """Each thread gets its own infer request: concurrent calls give the sequential answers."""
    _needs_openvino()
    from genrescope.inference.onnx_model import OnnxModel
    from genrescope.inference.registry import resolve_model_path

    m = OnnxModel(resolve_model_path("musicnn-msd")[1], threads=1, backend="openvino", precision="fp32")
    x = np.random.default_rng(0).uniform(0, 3, (4, m.n_bins, m.window_frames)).astype(np.float32)
    want = [m.predict_windows(x[i:i + 1]) for i in range(4)]
    got = [None] * 4

    def one(i):
        got[i] = m.predict_windows(x[i:i + 1])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w, g in zip(want, got):
        np.testing.assert_array_equal(w, g)


def test_backbone_and_head_run_on_the_chosen_backend():
    _needs_openvino("bf16")
    from genrescope.inference.backbone import Backbone, head_inference_model

    exact = Backbone("musicnn-msd", threads=1, backend="onnxruntime")
    fast = Backbone("musicnn-msd", threads=1, backend="openvino")
    x = np.random.default_rng(1).uniform(0, 3, (2, exact.model.n_bins, exact.window_frames)).astype(np.float32)
    a, b = exact.embed_windows(x), fast.embed_windows(x)
    assert not np.array_equal(a, b)  # bfloat16 really ran
    assert np.abs(a - b).max() <= 0.05 * np.abs(a).max()
    head = InferenceModel("head", ["a", "b"], exact.feature_config, "table", None, False,
                          lambda e: np.tile([0.25, 0.75], (len(e), 1)), "head.onnx", "onnx")
    composed = head_inference_model("gtzan", head, "musicnn-msd", threads=1, backend="openvino")
    assert (composed.backend, composed.precision) == ("openvino", "bf16")
    out = composed.predict_windows(x)  # the head's probabilities first (then, maybe, the backbone's tags)
    np.testing.assert_array_equal(out[:, :2], [[0.25, 0.75]] * 2)


def _member(name, labels, value, fc, fail=False):
    def run(x):
        if fail:
            raise GenrescopeError(f"{name} broke")
        return np.full((len(x), len(labels)), value, np.float32)

    return InferenceModel(name, labels, fc, "log_mel", 10, True, run, name, "onnx")


def test_parallel_ensemble_equals_sequential_and_raises_members_errors():
    from genrescope.config import FeatureConfig

    fc = FeatureConfig()
    members = [_member("a", ["x", "y"], 0.2, fc), _member("b", ["y", "z"], 0.6, fc)]
    x = np.zeros((3, 4, 10), np.float32)
    seq, par = ensemble("e", members).predict_windows(x), ensemble("e", members, parallel=True).predict_windows(x)
    np.testing.assert_array_equal(seq, par)
    np.testing.assert_allclose(par[0], [0.2, 0.4, 0.6])
    broken = ensemble("e", [members[0], _member("b", ["z"], 0.1, fc, fail=True)], parallel=True)
    with pytest.raises(GenrescopeError, match="b broke"):
        broken.predict_windows(x)


def test_shipped_ensemble_side_by_side_matches_one_after_another(write_audio):
    # no thread count: the members run side by side on their share of the cores
    path = write_audio("song.wav", duration=7.0)
    one, two = Predictor("musicnn", threads=1), Predictor("musicnn")
    np.testing.assert_allclose(one.predict(path).timeline.probs, two.predict(path).timeline.probs, atol=1e-5)


def test_gated_model_runs_one_call_at_a_time():
    import time

    from genrescope.config import FeatureConfig
    from genrescope.inference.inference_model import one_call_at_a_time

    inside, most = [0], [0]

    def run(x):
        inside[0] += 1
        most[0] = max(most[0], inside[0])
        time.sleep(0.005)
        inside[0] -= 1
        return np.zeros((len(x), 1), np.float32)

    gated = one_call_at_a_time(InferenceModel("m", ["a"], FeatureConfig(), "log_mel", 10, False, run, "m", "onnx"))
    threads = [threading.Thread(target=gated.predict_windows, args=(np.zeros((1, 2, 10)),)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1


def test_several_files_one_at_a_time_overlap_but_give_the_same_answers(write_audio):
    from genrescope.inference.predict import predict_files

    paths = [write_audio(f"s{i}.wav", duration=3.5 + i, seed=i) for i in range(3)] + [write_audio("bad.wav")]
    paths[-1].write_bytes(b"not audio")
    pred = Predictor("musicnn-msd", threads=1)
    got = predict_files(pred, paths, jobs=1)
    assert [g.path for g in got] == [str(p) for p in paths] and got[-1].error and "bad.wav" in got[-1].error
    for g, p in zip(got[:-1], paths):
        np.testing.assert_array_equal(g.timeline.probs, pred.predict(p).timeline.probs)
    assert pred.model.predict_windows.__name__ != "call"  # the caller's predictor is left as it was


def test_backbone_of_an_ensemble_runs_its_one_graph_with_the_members_rows_and_tags():
    """The ``musicnn`` backbone runs its one shipped graph; its rows are the members' embeddings side
    by side and its tags their probabilities merged by label, as member-by-member runs give them."""
    from genrescope.inference.backbone import Backbone
    from genrescope.inference.ensemble import LabelMerge

    fused = Backbone("musicnn", backend="onnxruntime")
    members = Backbone("musicnn", blocks=("embeddings", "probabilities"), backend="onnxruntime")
    assert fused.members == ["musicnn"] and members.members == ["musicnn-msd", "musicnn-mtt"]
    x = np.random.default_rng(2).uniform(0, 3, (3, fused.model.n_bins, fused.window_frames)).astype(np.float32)
    rows, tags = fused.run_windows(x)
    each, each_tags = members.run_windows(x)  # (emb msd 200, probs msd 50, emb mtt 200, probs mtt 50)
    np.testing.assert_allclose(rows, np.concatenate([each[:, :200], each[:, 250:450]], axis=1), atol=1e-5)
    assert fused.tag_labels == members.tag_labels == LabelMerge([m.labels for m in members.models]).labels
    np.testing.assert_allclose(tags, each_tags, atol=1e-6)


def test_compiled_openvino_models_are_cached_safely(tmp_path, monkeypatch):
    """A second load imports the compiled model (same answers, same metadata); a damaged entry
    is compiled and written again; an unwritable folder and ``off`` still load."""
    _needs_openvino()
    from genrescope.inference.registry import resolve_model_path

    path = resolve_model_path("musicnn-msd")[1]
    x = np.random.default_rng(1).uniform(0, 3, (2, 96, 187)).astype(np.float32)
    cache = tmp_path / "ov"
    monkeypatch.setenv("GENRESCOPE_OPENVINO_CACHE", str(cache))
    first = backends.OpenVinoSession(path, precision="fp32", threads=1)
    entries = list(cache.glob("*.ovblob"))
    assert len(entries) == 1 and not list(cache.glob(".tmp-*"))
    second = backends.OpenVinoSession(path, precision="fp32", threads=1)
    assert second.metadata == first.metadata and second.metadata["labels"]
    for a, b in zip(first.run(None, x), second.run(None, x)):
        np.testing.assert_array_equal(a, b)
    assert entries[0].stat().st_mtime_ns == list(cache.glob("*.ovblob"))[0].stat().st_mtime_ns  # read, not rewritten

    entries[0].write_bytes(entries[0].read_bytes()[:5000])  # cut short, as by a full disk
    third = backends.OpenVinoSession(path, precision="fp32", threads=1)
    np.testing.assert_array_equal(third.run(None, x)[0], first.run(None, x)[0])
    assert entries[0].stat().st_size > 5000  # compiled and written again

    other = backends.OpenVinoSession(path, precision="fp32", threads=2)  # another config: another entry
    assert len(list(cache.glob("*.ovblob"))) == 2 and other.metadata == first.metadata

    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("GENRESCOPE_OPENVINO_CACHE", str(blocked / "ov"))
    np.testing.assert_array_equal(backends.OpenVinoSession(path, precision="fp32", threads=1).run(None, x)[0],
                                  first.run(None, x)[0])
    monkeypatch.setenv("GENRESCOPE_OPENVINO_CACHE", "off")
    assert backends.compiled_cache_dir() is None
    backends.OpenVinoSession(path, precision="fp32", threads=1)
