"""Occlusion saliency (`--saliency`): silencing the seconds a model relies on drops its genre."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from genrescope.testing import synth_music

from genrescope.config import DEFAULT_FEATURES, MUSICNN_FEATURES
from genrescope.errors import GenrescopeError
from genrescope.insight.saliency import (
    occlusion_drops,
    occlusion_saliency,
    silence_value,
)

FOCUS = (62, 93)  # the frames of each window the fake model looks at: exactly its third 31-frame stretch


def _fake_predictor():
    cfg = MUSICNN_FEATURES  # 62.5 frames/s: 0.5 s = 31 frames; windows of 187 frames, no overlap

    def predict(x):
        s = 1 - np.exp(-x[:, :, FOCUS[0]:FOCUS[1]].mean(axis=(1, 2)))
        return np.stack([s, 1 - s], axis=1).astype(np.float32)

    model = SimpleNamespace(name="fake", kind="log_mel", window_frames=187, feature_config=cfg,
                            labels=["loud", "quiet"], genre_labels=["loud", "quiet"], predict_windows=predict)
    return SimpleNamespace(model=model)


def test_silence_is_the_config_s_own_floor():
    assert silence_value(MUSICNN_FEATURES, "log_mel") == 0.0
    assert silence_value(DEFAULT_FEATURES, "log_mel") == pytest.approx(-100.0)
    with pytest.raises(GenrescopeError):
        silence_value(DEFAULT_FEATURES, "mfcc")


def test_drops_only_where_the_model_looks():
    p = _fake_predictor().model.predict_windows
    x = np.random.default_rng(0).uniform(0.5, 2, size=(3, 4, 187)).astype(np.float32)
    d = occlusion_drops(p, x, 31, 0.0)
    assert d.shape == (3, 7, 2)
    assert np.all(d[:, 2, 0] > 0.2) and np.allclose(np.delete(d[:, :, 0], 2, axis=1), 0, atol=1e-6)
    assert np.allclose(d[:, :, 0], -d[:, :, 1], atol=1e-6)


def test_saliency_of_a_file_peaks_at_the_watched_seconds(write_audio):
    path = write_audio("s.wav", y=synth_music(9.0, 16000), sr=16000)
    sal = occlusion_saliency(_fake_predictor(), path)
    assert sal["method"] == "occlusion" and sal["labels"][0] == "loud" and sal["occlude_s"] == 0.496
    drop = np.array(sal["drop"])[:, 0]
    starts = np.array(sal["start_s"])
    hot = starts[drop > 0.05]
    win_s = 187 / 62.5
    # each non-overlapping window's watched stretch starts 62 frames (0.992 s) after the window
    # (the last window is aligned to the end of the song, so its stretch lies elsewhere)
    # stretches are reported on one grid of 31 frames, so a time is exact to one stretch (0.5 s)
    expected = [k * win_s + 62 / 62.5 for k in range(int(9.0 // win_s))]
    assert all(np.abs(hot - t).min() <= 0.5 for t in expected), (hot, expected)
    assert len(hot) <= len(expected) + 1


@pytest.mark.slow
def test_predict_saliency_json(write_audio, capsys):
    from genrescope.commands import main

    path = write_audio("song.wav", duration=7.0, sr=16000)
    assert main(["predict", str(path), "--model", "musicnn-msd", "--saliency", "--format", "json"]) == 0
    (out,) = json.loads(capsys.readouterr().out)
    s = out["saliency"]
    assert s["labels"] == [g["label"] for g in out["genres"][:5]]
    assert len(s["drop"]) == len(s["start_s"]) == len(s["end_s"]) and len(s["drop"][0]) == 5
    assert s["end_s"][-1] == pytest.approx(out["duration_s"], abs=0.01)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["genre10", "musicnn-msd", "musicnn-mtt", "vgg-msd", "vgg-mtt", "gtzan-features"])
def test_saliency_of_every_shipped_model(name, write_audio):
    """Every shipped model gives saliency over its own genres, or a plain error (a table model);
    genre10 is a head behind a backbone, whose windows also carry the taggers' tags."""
    from genrescope.inference.predict import Predictor

    predictor = Predictor(name)
    path = write_audio("song.wav", duration=7.0, sr=16000)
    if predictor.model.kind == "table":
        with pytest.raises(GenrescopeError, match="does not read fixed windows"):
            occlusion_saliency(predictor, path)
        return
    sal = occlusion_saliency(predictor, path)
    genres = predictor.model.genre_labels
    assert len(sal["labels"]) == min(5, len(genres)) and set(sal["labels"]) <= set(genres)
    assert np.array(sal["drop"]).shape == (len(sal["start_s"]), len(sal["labels"]))
    assert sal["window_s"] == pytest.approx(predictor.model.window_frames / predictor.model.feature_config.frame_rate,
                                            abs=1e-3)


def _saliency(drop: list[float], step: float = 0.5, window_s: float = 3.0) -> dict:
    starts = [k * step for k in range(len(drop))]
    return {"occlude_s": step, "window_s": window_s, "labels": ["rock"], "start_s": starts,
            "end_s": [t + step for t in starts], "drop": [[d] for d in drop]}


def test_strongest_stretch_spans_a_window():
    from genrescope.insight.saliency import strongest_stretch

    drop = [0.0] * 20
    drop[10] = drop[11] = 0.3  # 5.0-6.0 s: the peak
    start, end, mean = strongest_stretch(_saliency(drop), 0)
    assert end - start == pytest.approx(3.0)  # one window: 6 stretches of 0.5 s
    assert start <= 5.0 and end >= 6.0 and mean == pytest.approx(0.1)


def test_saliency_lines_name_whole_seconds_and_meaningful_drops():
    from genrescope.insight.annotate import format_annotations

    drop = [0.0] * 20
    drop[10] = 0.3
    text = format_annotations({"saliency": _saliency(drop)})
    import re

    m = re.search(r"rock rests most on 0:0(\d)-0:0(\d) .* by (\S+) on average", text)
    assert m and int(m[1]) <= 5 <= int(m[2]) and int(m[2]) - int(m[1]) >= 2, text  # a window, not 0:05-0:05
    assert m[3] == "0.05"  # 0.3 over six stretches, two decimals
    flat = format_annotations({"saliency": _saliency([-0.0002] * 20)})
    assert "rests most" not in flat and "-0.0" not in flat and "no stretch" in flat
