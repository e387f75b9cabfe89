"""`genrescope tag --windows N`: N windows spread evenly over the song, pooled into one
answer; a song of N windows or fewer is analysed whole. On a real shipped model."""
from __future__ import annotations

import numpy as np
import pytest

from genrescope.library.core import analyse, make_predictor
from helpers.library import write_track

MODEL = "musicnn-msd"  # 3 s windows: a 40 s song has 14 of them


@pytest.fixture(scope="module")
def predictor():
    return make_predictor(MODEL, threads=1)


def test_windows_spread_over_the_song(tmp_path, predictor, monkeypatch):
    song = write_track(tmp_path / "long.flac", "flac", seconds=40.0)
    cfg = predictor.model.feature_config
    calls = []
    real = type(predictor).analyse

    def spy(self, blocks, **kw):
        blocks = list(blocks)
        calls.append(sum(len(b) for b in blocks))
        return real(self, iter(blocks), **kw)

    monkeypatch.setattr(type(predictor), "analyse", spy)
    result = analyse(predictor, song, windows=4)
    from genrescope.inference.predict import _window_samples

    assert calls == [_window_samples(predictor.model)] * 4  # the model sees 4 windows of audio, not the song
    monkeypatch.setattr(type(predictor), "analyse", real)

    tl = predictor.predict(song, windows=4).timeline
    starts = tl.start_s
    assert len(starts) == 4 and starts[0] == 0.0 and abs(starts[-1] - (40.0 - cfg.window_s)) < 0.05
    assert np.allclose(np.diff(starts), np.diff(starts)[0], atol=1e-3)  # evenly spread
    assert result["duration_s"] == pytest.approx(40.0, abs=0.01)  # the song's length, not 4 windows'
    probs = [p for _, p in result["genres"]]
    assert probs == sorted(probs, reverse=True) and result["model"] == MODEL


def test_enough_windows_is_the_full_analysis(tmp_path, predictor):
    song = write_track(tmp_path / "short.ogg", "ogg", seconds=12.0)
    assert analyse(predictor, song, windows=8) == analyse(predictor, song, windows=0)
