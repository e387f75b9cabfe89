"""`genrescope export --web`: the static page, and the model manifest the in-browser mode runs
(no browser needed here; tests/test_browser_inference.py drives the page in Chromium)."""
from __future__ import annotations

import json

import pytest

from genrescope.commands import main
from genrescope.errors import GenrescopeError
from genrescope.inference.onnx_model import OnnxModel
from genrescope.inference.registry import pretrained_root
from genrescope.serve.webexport import build_web_models
from helpers.browser import HEAD_LABELS, make_head


def graph_files(entry: dict) -> list[str]:
    """The graph files a manifest entry names (what static/sw.js precaches)."""
    if "head" in entry:
        return [entry["head"]["backbone"]["file"], entry["head"]["file"]]
    return [entry["graph"]["file"]]


def test_manifest_carries_the_onnx_metadata():
    web = build_web_models([("musicnn-msd", "musicnn-msd")])
    assert web.manifest["format_version"] == 2
    (entry,) = web.manifest["models"]
    om = OnnxModel(pretrained_root() / "musicnn-msd" / "model.onnx")
    assert entry["feature_config"] == om.feature_config.to_dict()
    assert entry["labels"] == om.labels and entry["multi_label"] is True
    assert entry["window_frames"] == om.window_frames == 187 and entry["window_hop_frames"] == 187
    assert entry["input"] == "log_mel" and entry["n_bins"] == 96
    assert "head" not in entry and "members" not in entry
    graph = entry["graph"]
    assert graph["input"] == "features" and graph["output"] == "probabilities"
    assert graph["tags"] is None and graph["tag_labels"] is None  # a tagger: its tags are its labels
    assert web.files[graph["file"]].read_bytes() == (pretrained_root() / "musicnn-msd" / "model.onnx").read_bytes()
    assert set(entry["genre_labels"]) <= set(entry["labels"]) and "rock" in entry["genre_labels"]
    assert "female vocalists" not in entry["genre_labels"]


def test_the_default_model_is_one_graph_with_its_tags():
    """genre10 (a head and both taggers, shipped as one graph) is one file: its genres and the
    taggers' merged tags come out of that graph, named as the Python runtime names them."""
    web = build_web_models([("default", "default")])
    (entry,) = web.manifest["models"]
    om = OnnxModel(pretrained_root() / "genre10" / "model.onnx")
    assert entry["name"] == "genre10" and entry["labels"] == om.labels and entry["multi_label"] is False
    assert list(web.files) == graph_files(entry) == [entry["graph"]["file"]]
    assert web.files[entry["graph"]["file"]].read_bytes() == om.path.read_bytes()
    assert entry["graph"]["tags"] == "tags" and "tags" in om.outputs
    assert entry["graph"]["tag_labels"] == om.tag_labels and len(om.tag_labels) > len(om.labels)


def test_an_ensemble_is_its_one_fused_graph():
    from genrescope.inference.backbone import Backbone

    web = build_web_models([("musicnn", "musicnn")])
    (entry,) = web.manifest["models"]
    assert "members" not in entry and list(web.files) == [entry["graph"]["file"]]
    assert web.files[entry["graph"]["file"]].read_bytes() == (pretrained_root() / "musicnn" / "model.onnx").read_bytes()
    # the graph's labels are both taggers' tags merged by label, as the ensemble merges them
    assert entry["labels"] == Backbone("musicnn").tag_labels and entry["multi_label"] is True
    assert entry["graph"]["tags"] is None


def test_a_head_runs_behind_its_backbone(tmp_path):
    head = make_head(tmp_path / "head.onnx")
    web = build_web_models([("head", str(head)), ("musicnn-msd", "musicnn-msd")])
    h, bb = web.manifest["models"]
    assert "graph" not in h and "members" not in h
    backbone = h["head"]["backbone"]
    assert backbone["row"] == ["embeddings"] and backbone["tags"] == "probabilities"
    assert h["head"]["output"] == "probabilities" and h["head"]["input"] == "features"
    assert h["labels"] == HEAD_LABELS and h["multi_label"] is False and h["genre_labels"] == HEAD_LABELS
    assert backbone["tag_labels"] == bb["labels"]  # the head reports the tagger's tags
    assert h["feature_config"] == bb["feature_config"] and h["window_frames"] == 187
    assert backbone["file"] == bb["graph"]["file"]  # the backbone is stored once
    assert len(web.files) == 2 and web.files[h["head"]["file"]] == head


def test_a_head_behind_the_musicnn_ensemble_uses_its_fused_graph(tmp_path):
    from genrescope.inference.backbone import Backbone

    head = make_head(tmp_path / "h2.onnx", backbone="musicnn")
    web = build_web_models([("h2", str(head)), ("musicnn", "musicnn")])
    h, ens = web.manifest["models"]
    backbone = h["head"]["backbone"]
    assert backbone["file"] == ens["graph"]["file"] and len(web.files) == 2  # one backbone graph, stored once
    assert web.files[backbone["file"]].read_bytes() == (pretrained_root() / "musicnn" / "model.onnx").read_bytes()
    # its `embeddings` output is the row of blocks ["embeddings"]: both taggers' side by side
    assert backbone["row"] == ["embeddings"] and backbone["tag_labels"] == Backbone("musicnn").tag_labels


def test_a_head_on_each_taggers_tags_of_an_ensemble_is_refused(tmp_path):
    """A row of both blocks of each musicnn tagger cannot be read from the one musicnn graph (its
    tags are merged); the same blocks of one tagger can."""
    from genrescope.errors import CheckpointError

    both = ("embeddings", "probabilities")
    h3 = make_head(tmp_path / "h3.onnx", backbone="musicnn", blocks=both)
    with pytest.raises(CheckpointError, match=r"h3: the browser runs musicnn as one graph.*not \['embeddings', "
                                              r"'probabilities'\]"):
        build_web_models([("h3", str(h3))])
    h4 = make_head(tmp_path / "h4.onnx", blocks=both)
    web = build_web_models([("h3", str(h3)), ("h4", str(h4))], strict=False)
    assert [m["id"] for m in web.manifest["models"]] == ["h4"]
    assert web.manifest["models"][0]["head"]["backbone"]["row"] == ["embeddings", "probabilities"]
    reason = web.manifest["unsupported"]["h3"]
    assert "one graph" in reason and "\n" not in reason


def test_a_head_naming_other_backbone_blocks_is_refused(tmp_path):
    """A head's metadata is input too: blocks other than the backbone's embeddings and tags are refused."""
    import onnx

    from genrescope.errors import CheckpointError

    path = make_head(tmp_path / "odd.onnx")
    model = onnx.load(str(path))
    for p in model.metadata_props:
        if p.key == "provenance":
            p.value = json.dumps({"backbone": "musicnn-msd", "backbone_blocks": ["embeddings", "tags"]})
    onnx.save(model, str(path))
    with pytest.raises(CheckpointError, match="odd: its backbone blocks must be 'embeddings' and/or 'probabilities'"):
        build_web_models([("odd", str(path))])


def test_models_the_browser_cannot_run_are_refused():
    with pytest.raises(GenrescopeError, match="gtzan-features: its input is 'table'"):
        build_web_models([("gtzan-features", "gtzan-features")])
    web = build_web_models([("gtzan-features", "gtzan-features"), ("vgg-msd", "vgg-msd")], strict=False)
    assert [m["id"] for m in web.manifest["models"]] == ["vgg-msd"]
    assert "table" in web.manifest["unsupported"]["gtzan-features"]


def test_export_web_command_writes_a_static_site(tmp_path, capsys):
    out = tmp_path / "site"
    assert main(["export", "--web", str(out), "--model", "musicnn-msd"]) == 0
    assert "http.server" in capsys.readouterr().out
    html = (out / "index.html").read_text()
    assert 'data-mode="static"' in html and 'src="/' not in html and 'href="/static' not in html
    manifest = json.loads((out / "webmodels" / "manifest.json").read_text())
    assert manifest["format"] == "genrescope-web" and manifest["default"] == "musicnn-msd"
    for m in manifest["models"]:
        for f in graph_files(m):
            assert (out / "webmodels" / f).is_file()
    # every file the service worker precaches exists, or installing it would fail offline
    sw = (out / "sw.js").read_text()
    shell = json.loads(sw.split("const SHELL = ")[1].split(";")[0].replace("'", '"'))
    for rel in shell:
        assert rel == "./" or (out / rel).is_file(), rel
    vendor = out / "static" / "vendor" / "onnxruntime-web"
    assert "onnxruntime-web 1.30.0" in (vendor / "VERSION.txt").read_text()
    # exporting again into the same folder replaces it
    assert main(["export", "--web", str(out), "--model", "vgg-msd"]) == 0
    assert [f.name.split("-")[0] for f in (out / "webmodels").glob("*.onnx")] == ["vgg"]


def test_export_web_errors_are_one_line(tmp_path, capsys):
    assert main(["export", "--web", str(tmp_path / "x"), "--model", "no-such-model"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("genrescope: error: no-such-model") and "\n" not in err
    (tmp_path / "file").write_text("x")
    assert main(["export", "--web", str(tmp_path / "file")]) == 2
    assert "is not a folder" in capsys.readouterr().err
