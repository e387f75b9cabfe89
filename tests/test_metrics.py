import numpy as np
import pytest

from genrescope.errors import GenrescopeError
from genrescope.training.metrics import confusion_matrix, score


def test_confusion_and_scores_by_hand():
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 2, 2]
    c = confusion_matrix(y_true, y_pred, 3)
    np.testing.assert_array_equal(c, [[2, 1, 0], [0, 1, 1], [0, 0, 1]])
    r = score(y_true, y_pred, ["a", "b", "c"])
    assert r.accuracy == pytest.approx(4 / 6)
    np.testing.assert_allclose(r.precision, [1.0, 0.5, 0.5])
    np.testing.assert_allclose(r.recall, [2 / 3, 0.5, 1.0])
    f1 = [2 * 1 * (2 / 3) / (1 + 2 / 3), 0.5, 2 * 0.5 / 1.5]
    assert r.macro_f1 == pytest.approx(np.mean(f1))
    d = r.to_dict()
    assert d["n"] == 6 and d["per_class"]["c"]["recall"] == 1.0
    assert "macro-F1" in r.format()


def test_absent_class_does_not_count_in_macro_f1():
    r = score([0, 0, 1], [0, 0, 1], ["a", "b", "never"])
    assert r.macro_f1 == 1.0 and r.accuracy == 1.0


def test_bad_indices():
    with pytest.raises(GenrescopeError):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(GenrescopeError):
        confusion_matrix([0, 1], [0], 3)
