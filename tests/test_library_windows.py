"""`genrescope tag --windows N`: N windows spread evenly over the song, pooled into one
answer; a song of N windows or fewer is analysed whole. On a real shipped model."""
from __future__ import annotations

import numpy as np
import pytest

from genrescope.library.core import analyse, make_predictor
from test_library_support import write_track

MODEL = "musicnn-msd"  # 3 s windows: a 40 s song has 14 of them


@pytest.fixture(scope="module")
def predictor():
    return make_predictor(MODEL, threads=1)


def test_windows_spread_over_the_song(tmp_path, predictor, monkeypatch):
    song = write_track(tmp_path / "long.flac", "flac", seconds=40.0)
    calls = []
    real = type(predictor).predict

    def spy(self, path, *, offset=None, duration=None):
        calls.append((offset, duration))
        return real(self, path, offset=offset, duration=duration)

    monkeypatch.setattr(type(predictor), "predict", spy)
    result = analyse(predictor, song, windows=4)
    win = predictor.model.feature_config.window_s
    assert [c[1] for c in calls] == [win] * 4
    starts = np.array([c[0] for c in calls])
    assert starts[0] == 0.0 and abs(starts[-1] - (40.0 - win)) < 1e-6
    assert np.allclose(np.diff(starts), np.diff(starts)[0])  # evenly spread
    assert result["duration_s"] == pytest.approx(40.0, abs=0.01)  # the song's length, not 4 windows'
    probs = [p for _, p in result["genres"]]
    assert probs == sorted(probs, reverse=True) and result["model"] == MODEL


def test_enough_windows_is_the_full_analysis(tmp_path, predictor):
    song = write_track(tmp_path / "short.ogg", "ogg", seconds=12.0)
    assert analyse(predictor, song, windows=8) == analyse(predictor, song, windows=0)
