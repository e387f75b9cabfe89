"""The learner: grouped folds that never split an artist, nested selection, calibrated
out-of-fold probabilities, per-label thresholds, and ONNX graphs equal to the numpy head."""
from __future__ import annotations

import numpy as np
import pytest

from genrescope.errors import GenrescopeError
from genrescope.learn import onnx_head
from genrescope.learn.learner import cross_validate, fit_head, group_folds, learn_head, softmax
from genrescope.learn.thresholds import coverage, label_precision, label_thresholds, passes

pytest.importorskip("sklearn")
FAST = (("linear", 0.1, None), ("rbf", 10.0, 1.0))


def _blobs(n_per=12, g=3, f=20, noise=1.0, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(g, f)) * 2
    y = np.repeat(np.arange(g), n_per)
    return centres[y] + noise * rng.normal(size=(len(y), f)), y


def test_folds_never_put_one_artist_on_both_sides():
    x, y = _blobs()
    groups = np.array([f"artist{i // 3}" for i in range(len(y))])
    folds = group_folds(y, groups, 5)
    assert len(folds) == 5
    for tr, te in folds:
        assert not set(groups[tr]) & set(groups[te])
    assert sorted(np.concatenate([te for _, te in folds]).tolist()) == list(range(len(y)))


def test_grouping_stops_an_artist_leak():
    """Each artist's songs share a fingerprint and one genre, but the genre has no sound of its own:
    folds that split artists score the fingerprint; grouped folds score chance."""
    from sklearn.model_selection import StratifiedKFold

    rng = np.random.default_rng(1)
    n_artists, per = 18, 4
    artist_label = np.arange(n_artists) % 3
    finger = rng.normal(size=(n_artists, 30)) * 3
    a = np.repeat(np.arange(n_artists), per)
    x, y = finger[a] + 0.3 * rng.normal(size=(len(a), 30)), artist_label[a]
    grouped = cross_validate(x, y, a, 3, n_folds=3, candidates=FAST)
    leaky = np.zeros(len(y), dtype=int)
    for tr, te in StratifiedKFold(3, shuffle=True, random_state=0).split(x, y):
        leaky[te] = fit_head(x[tr], y[tr], 3, FAST[1]).logits(x[te]).argmax(1)
    assert np.mean(leaky == y) > 0.9  # memorised artists
    assert np.mean(grouped.probs.argmax(1) == y) < 0.7  # honest: the genre cannot be heard


def test_one_artist_cannot_be_cross_validated():
    x, y = _blobs(n_per=3)
    with pytest.raises(GenrescopeError, match="at least two"):
        group_folds(y, np.zeros(len(y)), 5)


def test_learnt_head_separates_and_its_probabilities_sum_to_one():
    x, y = _blobs()
    groups = np.arange(len(y)) // 2
    learnt = learn_head(x, y, groups, 3, n_folds=3, candidates=FAST)
    assert learnt.cv.probs.shape == (len(y), 3)
    np.testing.assert_allclose(learnt.cv.probs.sum(1), 1, atol=1e-6)
    assert np.mean(learnt.cv.probs.argmax(1) == y) > 0.9
    assert len(learnt.cv.fold_accuracy) == 3 and learnt.head.config["kind"] in ("linear", "rbf")
    assert np.mean(learnt.head.predict_proba(x).argmax(1) == y) > 0.95


def test_class_missing_from_a_training_part_is_never_predicted():
    x, y = _blobs(n_per=5)
    keep = y != 2
    head = fit_head(x[keep], y[keep], 3, ("linear", 1.0, None))
    assert head.predict_proba(x)[:, 2].max() < 1e-6


def test_thresholds_reach_the_target_precision_on_the_folds():
    rng = np.random.default_rng(3)
    n, g = 400, 3
    y = rng.integers(0, g, n)
    conf = rng.uniform(0.34, 1.0, n)
    right = rng.uniform(0, 1, n) < conf  # a calibrated toy: confident answers are right more often
    pred = np.where(right, y, (y + 1) % g)
    probs = np.full((n, g), 0.0)
    probs[np.arange(n), pred] = conf
    probs[np.arange(n), (pred + 2) % g] = 1 - conf
    th = label_thresholds(probs, y, 0.8)
    prec = label_precision(probs, y, th)
    for t, p in zip(th, prec):
        assert t is not None and p >= 0.8
        assert t > 0.5  # the low-confidence half is well below 0.8 precision
    cov = coverage(probs, y, th)
    assert cov.precision >= 0.8 and 0 < cov.coverage < 1


def test_a_label_never_precise_enough_gets_no_threshold():
    y = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.95, 0.05], [0.6, 0.4]])  # label 0 is right 1 time in 3
    th = label_thresholds(probs, y, 0.8)
    assert th[1] is None and not passes(0.99, th[1])
    assert th[0] is None  # the most confident answer (0.95) is already wrong


@pytest.mark.parametrize("kind", ["linear", "rbf"])
def test_onnx_graph_equals_the_numpy_head(kind):
    ort = pytest.importorskip("onnxruntime")
    x, y = _blobs(f=16)
    head = fit_head(x, y, 3, (kind, 1.0, 1.0), temperature=0.7)
    if kind == "linear":
        data = onnx_head.linear_graph(head.weight / head.scale[:, None],
                                      head.bias - (head.mean / head.scale) @ head.weight, {"k": "v"})
    else:
        data = onnx_head.rbf_graph(head.mean, 1 / head.scale, head.landmarks, head.gamma, head.weight, head.bias, {})
    s = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    out = s.run(None, {"features": x.astype(np.float32)})[0]
    np.testing.assert_allclose(out, head.predict_proba(x), atol=2e-5)
    np.testing.assert_allclose(out.sum(1), 1, atol=1e-5)


def test_softmax_is_stable():
    p = softmax(np.array([[1000.0, 0.0], [-1000.0, 0.0]]))
    assert np.isfinite(p).all() and p[0, 0] == 1 and p[1, 1] == 1
