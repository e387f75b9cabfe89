import numpy as np
import pytest

from genrescope.config import FeatureConfig
from genrescope.errors import GenrescopeError
from genrescope.features.windows import aggregate, slice_windows, window_starts


@pytest.mark.parametrize("n,win,hop", [(1000, 129, 64), (129, 129, 64), (50, 129, 64), (130, 129, 64), (5000, 100, 100)])
def test_windows_cover_every_frame(n, win, hop):
    starts = window_starts(n, win, hop)
    covered = np.zeros(max(n, win), bool)
    for s in starts:
        covered[s:s + win] = True
    assert covered[:n].all()
    assert np.all(np.diff(starts) > 0) and np.all(np.diff(starts) <= hop)
    assert starts[-1] + win == max(n, win)


def test_slice_windows_shapes_and_times():
    cfg = FeatureConfig(window_s=3.0, window_hop_s=1.5)
    feats = np.random.default_rng(0).standard_normal((128, 1293)).astype(np.float32)  # 30 s
    w, start, end = slice_windows(feats, cfg)
    assert w.shape[1:] == (128, cfg.window_frames)
    assert start[0] == 0 and abs(end[-1] - 1293 / cfg.frame_rate) < 1e-9
    np.testing.assert_allclose(np.diff(start)[:-1], 1.5, atol=0.02)
    k = 3
    s = int(round(start[k] * cfg.frame_rate))
    np.testing.assert_array_equal(w[k], feats[:, s:s + cfg.window_frames])


def test_short_song_is_padded_to_one_window():
    cfg = FeatureConfig()
    feats = np.full((10, 20), 3.0, np.float32)
    feats[0, 0] = -5.0
    w, start, end = slice_windows(feats, cfg)
    assert w.shape == (1, 10, cfg.window_frames)
    assert np.all(w[0, :, 20:] == -5.0)
    assert end[0] == pytest.approx(20 / cfg.frame_rate)


def test_aggregate():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1]])
    np.testing.assert_allclose(aggregate(p), p.mean(0), rtol=1e-6)
    np.testing.assert_allclose(aggregate(p, "vote"), [2 / 3, 1 / 3, 0])
    g = aggregate(p, "log_mean")
    geo = np.exp(np.log(p).mean(0))
    np.testing.assert_allclose(g, geo / geo.sum(), rtol=1e-6)
    assert g.argmax() == 1  # the geometric mean punishes class 0's one low window
    with pytest.raises(GenrescopeError):
        aggregate(p, "median")
    with pytest.raises(GenrescopeError):
        aggregate(np.zeros((0, 3)))
