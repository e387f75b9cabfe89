"""The genre10 recipe's pieces that need no data: the artist-proxy folds, the logistic
regression written as a features-mlp head (checkpoint and ONNX give the regression's answer),
and the shipping rule."""
from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes"))

pytest.importorskip("sklearn")


def _tracks(per_genre: int = 30):
    return [SimpleNamespace(label=g, track_id=f"{g}.{i:05d}", split="train")
            for g in ("blues", "jazz", "rock") for i in range(0, 3 * per_genre, 3)]


def test_proxy_groups_are_genre_and_blocks_of_track_numbers():
    from gtzan_folds import proxy_groups

    t = [SimpleNamespace(label="reggae", track_id="reggae.00009"), SimpleNamespace(label="reggae", track_id="reggae.00010"),
         SimpleNamespace(label="pop", track_id="pop.00009")]
    assert list(proxy_groups(t)) == ["reggae/0", "reggae/1", "pop/0"]


def test_repeated_folds_never_split_a_group_and_score_each_track_once_per_repeat():
    from gtzan_folds import proxy_groups, repeated_folds

    tracks = _tracks()
    groups = proxy_groups(tracks)
    folds = repeated_folds(tracks, repeats=2, k=3)
    assert len(folds) == 6
    for r in (0, 1):
        scored = np.concatenate([b for rr, _, _, b in folds if rr == r])
        assert sorted(scored) == list(range(len(tracks)))
    for _, _, a, b in folds:
        assert not set(groups[a]) & set(groups[b])
    # the repeats differ
    assert [list(b) for rr, _, _, b in folds if rr == 0] != [list(b) for rr, _, _, b in folds if rr == 1]


def test_inner_splits_keep_copies_on_the_fitting_side():
    from genre10_cv import inner_splits

    y = np.repeat([0, 1, 2], 12)
    groups = np.array([f"{c}/{i // 4}" for c, i in zip(y, range(36))])
    for fit, test in inner_splits(y, groups, 3, seed=0):
        assert test.max() < 36  # only clean rows are scored
        assert set(fit % 36).isdisjoint(test)  # no copy of a scored track is fitted


def test_the_regression_becomes_a_features_mlp_head_with_the_same_logits(tmp_path):
    pytest.importorskip("torch")
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from genre10_linear import check_parity, linear_head
    from genrescope.config import MUSICNN_FEATURES
    from genrescope.models.checkpoint import load_checkpoint, save_checkpoint
    from genrescope.training.export import export_onnx

    rng = np.random.default_rng(0)
    X = rng.normal(3.0, [0.1 + i % 7 for i in range(40)], size=(90, 40))  # columns far from standard
    y = np.arange(90) % 3
    X[np.arange(90), y] += 2.0
    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=1000)).fit(X, y)
    model = linear_head(pipe, 3)
    windows = [rng.normal(3.0, 2.0, size=(5, 40)) for _ in range(4)]
    assert check_parity(model, pipe, windows) < 1e-4
    assert model.config.hidden == () and model.config.n_bins == 40
    # through the checkpoint: the same probabilities
    ckpt = save_checkpoint(tmp_path / "head.safetensors", model, model_name="features-mlp",
                           feature_config=MUSICNN_FEATURES, labels=["a", "b", "c"])
    again, _ = load_checkpoint(ckpt)
    x = np.concatenate(windows).astype(np.float32)
    with torch.no_grad():
        p = torch.softmax(again(torch.from_numpy(x)), -1).numpy()
    assert np.abs(p - pipe.predict_proba(x)).max() < 1e-5
    # and through ONNX
    ort = pytest.importorskip("onnxruntime")
    onnx_path = export_onnx(ckpt, tmp_path / "head.onnx")
    sess = ort.InferenceSession(str(onnx_path))
    out = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    probs = out if np.allclose(out.sum(axis=1), 1.0, atol=1e-4) else torch.softmax(torch.from_numpy(out), -1).numpy()
    assert np.abs(probs - pipe.predict_proba(x)).max() < 1e-4


def test_a_regression_that_never_saw_a_class_is_refused():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from genre10_linear import linear_head

    X = np.random.default_rng(1).normal(size=(20, 6))
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, np.arange(20) % 2)
    with pytest.raises(ValueError, match="classes"):
        linear_head(pipe, 3)


def _cv(cand_diff: float, se: float, f1: float, ff_acc: float) -> dict:
    base = {"macro_f1": {"mean": 0.60}, "fold_accuracy_diff": {"mean": 0.0, "se": 0.0}}
    cand = {"macro_f1": {"mean": f1}, "fold_accuracy_diff": {"mean": cand_diff, "se": se}}
    ff = {"accuracy": 0.66, "accuracy_se": 0.03, "macro_f1": 0.49, "macro_f1_se": 0.03}
    return {"repeated": {"lr-mean@win": cand, "head-aug": base},
            "ff_swap": {"lr-mean@win": dict(ff, accuracy=ff_acc), "head-aug": ff}}


@pytest.mark.parametrize("diff, se, f1, ff_acc, ships", [
    (0.05, 0.01, 0.65, 0.70, True),
    (0.015, 0.01, 0.65, 0.70, False),  # within twice the fold noise
    (0.05, 0.01, 0.58, 0.70, False),  # macro-F1 lower
    (0.05, 0.01, 0.65, 0.60, False),  # worse on the FF swap by more than its se
])
def test_shipping_rule(diff, se, f1, ff_acc, ships):
    from genre10_linear import beats

    ok, why = beats(_cv(diff, se, f1, ff_acc))
    assert ok is ships and ("NO" in why) is not ships
