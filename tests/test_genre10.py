"""The default predictor: the shipped ten-genre head behind both musicnn taggers.

It must name each of the ten GTZAN genres as one distribution that sums to one (timeline
and track), keep the taggers' tags (other genres, moods) visible as tags, rebuild itself
from its files, agree between ONNX Runtime and PyTorch, and say where it came from."""
from __future__ import annotations

import json

import numpy as np
import pytest

from genrescope.commands import main
from genrescope.inference.predict import Predictor
from genrescope.inference.registry import DEFAULT_MODEL, pretrained_info, pretrained_names, pretrained_root

GTZAN_GENRES = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]


@pytest.fixture
def songs(write_audio):
    """Three generated songs, several windows each, at other rates than the taggers' 16 kHz."""
    return [write_audio("one.wav", 7.0, seed=1), write_audio("two.flac", 4.0, sr=44100, channels=2, seed=2),
            write_audio("three.mp3", 5.0, sr=48000, seed=3)]


@pytest.fixture(scope="module")
def predictor():
    return Predictor("genre10")


def test_genre10_is_shipped_and_the_default():
    assert "genre10" in pretrained_names()
    assert DEFAULT_MODEL == "genre10"
    info = pretrained_info("genre10")
    assert info["labels"] == GTZAN_GENRES
    assert info["backbone"] == "musicnn"
    sel = info["selection"]
    # provenance: chosen on the artist-disjoint folds, never on FF test
    assert "fold_A" in sel and "fold_B" in sel and sel["pooled"]["n"] == 338
    assert "FF test never seen" in info["dataset"]["name"]


def test_one_distribution_over_ten_genres_and_the_taggers_tags(predictor, songs):
    pred = predictor.predict(songs[0])
    assert [g for g, _ in pred.genres] != [] and sorted(g for g, _ in pred.genres) == GTZAN_GENRES
    assert sum(p for _, p in pred.genres) == pytest.approx(1.0, abs=1e-4)
    tl = pred.timeline
    assert tl.labels == GTZAN_GENRES and not tl.multi_label
    assert np.allclose(tl.probs.sum(axis=1), 1.0, atol=1e-4)
    # tags: both taggers' tag sets merged (other genres and moods), independent probabilities
    tags = dict(pred.tags)
    assert {"electronic", "punk", "Mellow", "techno", "female vocalists"} <= set(tags)
    assert pred.tag_timeline.probs.shape == (len(tl.probs), len(tags))
    assert all(0.0 <= p <= 1.0 for p in tags.values())


def test_tags_are_the_ensemble_tags_of_the_same_windows(predictor, songs):
    """The tags come from the same backbone pass: equal to the musicnn ensemble's output."""
    ours = predictor.predict(songs[1])
    ens = Predictor("musicnn").predict(songs[1])
    ens_track = dict(zip(ens.timeline.labels, ens.timeline.track()))
    for label, p in ours.tags:
        assert p == pytest.approx(ens_track[label], abs=1e-5)


def test_default_cli_json_is_the_ten_genre_distribution(songs, capsys):
    assert main(["predict", str(songs[0]), "--format", "json", "--top", "0", "--tags", "--timeline"]) == 0
    out = json.loads(capsys.readouterr().out)[0]
    assert out["model"] == "genre10" and out["multi_label"] is False
    assert [g["label"] for g in out["genres"]] and len(out["genres"]) == 10
    assert sum(g["probability"] for g in out["genres"]) == pytest.approx(1.0, abs=1e-3)
    assert out["tags"] and out["timeline"]["labels"] == GTZAN_GENRES


def test_onnx_and_torch_agree(songs):
    pytest.importorskip("torch")
    a = Predictor("genre10", backend="onnxruntime").predict(songs[2])  # exact float32, like torch
    b = Predictor("genre10", runtime="torch").predict(songs[2])
    assert np.abs(a.timeline.probs - b.timeline.probs).max() < 1e-4
    assert a.genres[0][0] == b.genres[0][0]


def test_the_shipped_files_rebuild_the_head():
    pytest.importorskip("torch")
    from genrescope.models.checkpoint import load_checkpoint

    model, info = load_checkpoint(pretrained_root() / "genre10" / "checkpoint.safetensors")
    assert info["labels"] == GTZAN_GENRES and info["backbone"] == "musicnn"
    assert model.config.n_bins == 400 + 100 * ("probabilities" in info["backbone_blocks"])


def test_the_rederivation_on_repeated_grouped_folds_is_recorded():
    """The head was compared with logistic regression on the same repeated grouped folds; the
    record says which won by the shipping rule and holds both candidates' figures with spreads."""
    red = pretrained_info("genre10")["selection"]["rederived"]
    assert "grouped stratified K-fold" in red["protocol"] and "FF train/valid swap" in red["protocol"]
    assert {red["candidate"], red["baseline"]} <= set(red["candidates"])
    assert red["shipped"] is ("NO" not in red["rule"])
    for c in red["candidates"].values():
        assert 0 < c["accuracy"]["mean"] <= 1 and c["accuracy"]["sd"] >= 0 and c["fold_accuracy_sd"] > 0
        assert 0 < c["ff_swap"]["accuracy"] <= 1 and c["ff_swap"]["accuracy_se"] > 0
    assert "recipes/genre10.py cv" in red["command"]
