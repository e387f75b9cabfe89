"""`genrescope learn` end to end on a generated library: the taxonomy printed before training,
the model folder, the model working as --model DIR (predict, tag), thresholds respected by
tag --write, the embedding cache reused, and clear errors."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from genrescope.commands import main
from genrescope.learn.from_library import learn_library
from helpers.learn_library import make_learn_library

pytest.importorskip("sklearn")
pytest.importorskip("mutagen")
FAST = (("linear", 0.1, None), ("rbf", 10.0, 1.0))


@pytest.fixture(scope="module")
def learnt(tmp_path_factory):
    root = tmp_path_factory.mktemp("learn")
    lib, items = make_learn_library(root)
    lines: list[str] = []
    out = learn_library([str(lib)], root / "model", aliases=root / "aliases.txt", folds=3, jobs=1, progress=False,
                        cache_root=root / "cache", say=lines.append, candidates=FAST)
    return root, lib, items, out, "\n".join(lines)


@pytest.mark.slow
def test_learn_prints_the_taxonomy_first_and_writes_its_provenance(learnt):
    root, lib, items, out, text = learnt
    assert text.index("taxonomy: 3 labels") < text.index("embedded") < text.index("cross-validation")
    assert "Polka (1)" in text and "Xmas (2)" in text and "untagged files" in text
    cfg = json.loads((out.out / "config.json").read_text())
    assert cfg["kind"] == "learnt" and sorted(cfg["labels"]) == ["Drum & Bass", "Hip-Hop", "Rock"]
    assert cfg["counts"] == {"Rock": 8, "Drum & Bass": 7, "Hip-Hop": 7}
    assert cfg["rare"] == {"Polka": 1} and cfg["dropped"] == {"Xmas": 2} and cfg["untagged"] == 3
    assert cfg["genrescope_version"] and cfg["created"] and str(lib) in cfg["library"]
    assert set(cfg["thresholds"]) == set(cfg["labels"]) and cfg["cv"]["folds"] == 3
    assert cfg["cv"]["accuracy"] > 0.8  # three sounds a tagger tells apart
    assert {"model.onnx", "track.onnx", "head.npz"} <= {p.name for p in out.out.iterdir()}


@pytest.mark.slow
def test_model_dir_predicts_with_the_pooled_features_it_learnt_from(learnt):
    from genrescope.inference.predict import Predictor
    from genrescope.learn.embeddings import cached_windows, pool
    from genrescope.learn.model_dir import load_head

    root, lib, items, out, _ = learnt
    pred = Predictor(str(out.out))
    head, labels = load_head(out.out)
    assert pred.labels == labels
    for it in items:
        if it.expect is None:
            continue
        p = pred.predict(lib / it.name)
        probs = dict(p.genres)
        assert abs(sum(probs.values()) - 1) < 1e-4 and p.tags  # one distribution, taggers' tags beside it
        assert p.timeline.probs.shape[1] == len(labels)
        np.testing.assert_allclose(p.timeline.probs.sum(1), 1, atol=1e-4)
        # the track answer is the head on the song's pooled rows, as in learning (cached rows: same audio)
        rows = cached_windows(str(lib / it.name), root / "cache")
        want = head.predict_proba(pool(rows)[None])[0]
        got = np.array([probs[lab] for lab in labels])
        np.testing.assert_allclose(got, want, atol=2e-3)
    p = pred.predict(lib / "untagged_0.mp3")  # made with the Rock sound
    assert p.genres[0][0] == "Rock"


@pytest.mark.slow
def test_relearning_reads_the_embedding_cache(learnt):
    root, lib, *_ = learnt
    from genrescope.learn.embeddings import embed_files

    files = sorted(str(p) for p in lib.iterdir() if p.name.startswith("Rock"))
    emb = embed_files(files, cache_root=root / "cache", jobs=1, progress=False)
    assert emb.cached == len(files) and not emb.compute_seconds


@pytest.mark.slow
def test_tag_writes_only_above_the_learnt_thresholds(learnt, tmp_path):
    from genrescope.library import tags as T
    from genrescope.library.tag_run import tag_library
    from genrescope.library.core import TagOptions

    root, lib, items, out, _ = learnt
    model = tmp_path / "model"
    shutil.copytree(out.out, model)
    cfg = json.loads((model / "config.json").read_text())
    cfg["thresholds"] = {"Rock": 0.0, "Hip-Hop": None, "Drum & Bass": 1.5}  # Rock: always; others: never
    cfg["threshold_precision"] = {"Rock": 0.9, "Hip-Hop": None, "Drum & Bass": None}
    (model / "config.json").write_text(json.dumps(cfg))
    work = tmp_path / "lib"
    work.mkdir()
    names = ["untagged_0.mp3", "untagged_1.flac", "Rock_3.flac", "DrumnBass_0.flac"]
    for n in names:
        shutil.copy(lib / n, work / n)
    recs = {r["path"].rsplit("/", 1)[-1]: r for r in tag_library(
        [str(work)], TagOptions(model=str(model), write=True), report_path=str(tmp_path / "r.jsonl"))}
    assert T.read_snapshot(work / "untagged_0.mp3")[1]["TCON"] == ["Rock"]
    assert recs["untagged_0.mp3"]["expected_precision"] == 0.9
    assert T.read_snapshot(work / "untagged_1.flac")[1]["genre"] is None  # Hip-Hop: never sure
    assert recs["untagged_1.flac"]["note"].startswith("unsure: ") and "Hip-Hop" in recs["untagged_1.flac"]["note"]
    assert recs["untagged_1.flac"]["expected_precision"] is None
    assert T.read_snapshot(work / "Rock_3.flac")[1]["genre"] == ["Rock; Pop"]  # existing genre kept
    assert "existing genre kept" in recs["Rock_3.flac"]["note"]


def test_too_few_labels_is_a_clear_error(tmp_path, capsys):
    from helpers.learn_library import write_audio_file, write_genre_tags
    from genrescope.testing import synth_music

    lib = tmp_path / "lib"
    for i in range(4):
        p = lib / f"a{i}.flac"
        write_audio_file(p, "flac", synth_music(1.0), 22050)
        write_genre_tags(p, "flac", ["Jazz"] if i < 3 else ["Rock"], f"artist {i}")
    assert main(["learn", str(lib), "--out", str(tmp_path / "m"), "--no-progress"]) == 2
    err = capsys.readouterr()
    assert "1 label(s) with at least 3 tracks" in err.err and "Rock (1)" in err.out
    assert not (tmp_path / "m").exists()


def test_bad_options_are_clear_errors(tmp_path, capsys):
    (tmp_path / "lib").mkdir()
    assert main(["learn", str(tmp_path / "lib"), "--out", str(tmp_path / "m")]) == 2
    assert "no audio files" in capsys.readouterr().err
    assert main(["learn", str(tmp_path), "--min-precision", "1.5"]) == 2
    assert main(["learn", str(tmp_path), "--labels", str(tmp_path / "nope.csv")]) == 2
    assert "nope.csv" in capsys.readouterr().err


def test_learnt_models_are_listed_and_found_by_name(tmp_path, monkeypatch, capsys):
    from genrescope.inference.registry import resolve_model_path

    monkeypatch.setenv("GENRESCOPE_MODELS", str(tmp_path))
    d = tmp_path / "mine"
    d.mkdir()
    (d / "model.onnx").write_bytes(b"x")
    (d / "config.json").write_text(json.dumps({"kind": "learnt", "labels": ["a", "b"], "cv": {"accuracy": 0.5,
                                                                                              "tracks": 9}}))
    assert main(["models", "--learnt"]) == 0
    out = capsys.readouterr().out
    assert "mine" in out and "2 labels from 9 tracks" in out
    assert resolve_model_path("mine")[1] == d / "model.onnx"


@pytest.mark.slow
def test_tag_after_learn_reads_the_cached_embeddings(learnt, monkeypatch):
    """A file learn embedded is tagged from its cached rows, with the same answer as decoding it."""
    from genrescope.library.core import analyse, make_predictor

    root, lib, items, out, _ = learnt
    path = str(lib / "Rock_0.mp3")
    pred = make_predictor(str(out.out))
    monkeypatch.setenv("GENRESCOPE_CACHE", str(root / "cache"))
    assert pred.model.cached_track(path) is not None  # learn left the rows where tag looks
    from_cache = analyse(pred, path)
    monkeypatch.setattr(pred.model, "cached_track", None)
    decoded = analyse(pred, path)
    assert [g for g, _ in from_cache["genres"]] == [g for g, _ in decoded["genres"]]
    np.testing.assert_allclose([p for _, p in from_cache["genres"]], [p for _, p in decoded["genres"]], atol=2e-3)
    monkeypatch.setenv("GENRESCOPE_CACHE", str(root / "empty-cache"))
    assert make_predictor(str(out.out)).model.cached_track(path) is None


@pytest.mark.slow
def test_model_folder_is_one_model_for_serve_and_the_web_export(learnt):
    from genrescope.inference.registry import resolve_model_path
    from genrescope.serve.model_catalog import _scan_model_dir
    from genrescope.serve.webexport import build_web_models

    root, lib, items, out, _ = learnt
    assert resolve_model_path(out.out / "track.onnx") == resolve_model_path(out.out) == ("model",
                                                                                        out.out / "model.onnx")
    assert [e.name for e in _scan_model_dir(root, "onnx") if "model" in e.source] == ["model"]
    web = build_web_models([("mine", str(out.out))])
    entry = web.manifest["models"][0]
    assert entry["labels"] == json.loads((out.out / "config.json").read_text())["labels"] and "head" in entry
    # the page runs it as two graphs: the one musicnn graph (its embeddings are the row), then the window head
    backbone = entry["head"]["backbone"]
    assert backbone["row"] == ["embeddings"] and backbone["tags"] == "probabilities"
    assert web.files[backbone["file"]] == resolve_model_path("musicnn")[1]
    assert web.files[entry["head"]["file"]] == out.out / "model.onnx" and len(web.files) == 2
