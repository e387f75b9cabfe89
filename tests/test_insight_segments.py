"""Segments (`--segments`): Viterbi over the genre timeline with a cost per change."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import SHARED_DATA

from genrescope.errors import GenrescopeError
from genrescope.inference.predict import Timeline
from genrescope.insight.segments import format_segments, segment_timeline, viterbi


def _timeline(probs, hop=3.0, labels=("rock", "jazz", "pop")):
    probs = np.asarray(probs, np.float32)
    start = np.arange(len(probs)) * hop
    return Timeline(start, start + hop, probs, list(labels))


def test_zero_cost_is_the_argmax_and_a_high_cost_never_switches():
    rng = np.random.default_rng(0)
    e = np.log(rng.dirichlet(np.ones(4), size=50))
    assert np.array_equal(viterbi(e, 0.0), e.argmax(axis=1))
    path = viterbi(e, 1e9)
    assert len(set(path)) == 1 and path[0] == e.sum(axis=0).argmax()


def test_viterbi_is_the_best_path_by_brute_force():
    import itertools

    rng = np.random.default_rng(1)
    e = np.log(rng.dirichlet(np.ones(3), size=7))
    cost = 0.7

    def score(path):
        return sum(e[t, s] for t, s in enumerate(path)) - cost * sum(a != b for a, b in itertools.pairwise(path))

    best = max(itertools.product(range(3), repeat=7), key=score)
    assert np.isclose(score(viterbi(e, cost)), score(best))


def test_one_odd_window_does_not_split_but_a_real_change_does():
    rock, jazz = [0.8, 0.1, 0.1], [0.1, 0.8, 0.1]
    probs = [rock] * 6 + [jazz] + [rock] * 6 + [jazz] * 6
    segs = segment_timeline(_timeline(probs))
    assert [s["label"] for s in segs] == ["rock", "jazz"]
    assert segs[0]["start_s"] == 0 and segs[1]["start_s"] == 39.0 and segs[-1]["end_s"] == 57.0
    assert format_segments(segs) == "0:00-0:39 rock, 0:39-0:57 jazz"
    assert 0.7 < segs[1]["probability"] <= 0.8


def test_bad_input_is_refused():
    with pytest.raises(GenrescopeError):
        viterbi(np.zeros((0, 3)), 1.0)
    with pytest.raises(GenrescopeError):
        viterbi(np.zeros((3, 3)), -1.0)


@pytest.mark.shared_data
def test_boundaries_of_concatenated_real_excerpts(tmp_path, capsys):
    """Four GTZAN excerpts of clearly different styles, end to end: the segments' boundaries land
    within one model window (musicnn: 2.99 s, the timeline's resolution) of the true joins."""
    import soundfile as sf

    from genrescope.audio.decode import load_audio
    from genrescope.commands import main

    parts = [SHARED_DATA / "gtzan" / "clips" / g / f"{g}.00000.wav" for g in ("metal", "classical", "disco", "jazz")]
    if not all(p.is_file() for p in parts):
        pytest.skip("GTZAN clips not present")
    ys = [load_audio(p, sr=22050) for p in parts]
    joins = np.cumsum([len(y) / 22050 for y in ys])[:-1]
    mix = tmp_path / "medley.wav"
    sf.write(str(mix), np.concatenate(ys), 22050, subtype="PCM_16")
    assert main(["predict", str(mix), "--model", "musicnn-msd", "--segments", "--format", "json"]) == 0
    (out,) = json.loads(capsys.readouterr().out)
    segs = out["segments"]
    assert len(segs) == 4, segs
    bounds = [s["start_s"] for s in segs[1:]]
    assert np.abs(np.subtract(bounds, joins)).max() <= 2.992, (bounds, joins)
    assert segs[0]["label"] in ("metal", "heavy metal", "hard rock", "rock")
    assert segs[-1]["label"] == "jazz"
    assert main(["predict", str(mix), "--model", "musicnn-msd", "--segments"]) == 0
    assert "segments: 0:00-0:" in capsys.readouterr().out
