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


def test_manifest_carries_the_onnx_metadata():
    web = build_web_models([("musicnn-msd", "musicnn-msd")])
    (entry,) = web.manifest["models"]
    om = OnnxModel(pretrained_root() / "musicnn-msd" / "model.onnx")
    assert entry["feature_config"] == om.feature_config.to_dict()
    assert entry["labels"] == om.labels and entry["multi_label"] is True
    assert entry["window_frames"] == om.window_frames == 187 and entry["window_hop_frames"] == 187
    assert entry["input"] == "log_mel" and entry["n_bins"] == 96
    (member,) = entry["members"]
    (graph,) = member["graphs"]
    assert graph["output"] == "probabilities"
    assert web.files[graph["file"]].read_bytes() == (pretrained_root() / "musicnn-msd" / "model.onnx").read_bytes()
    assert set(entry["genre_labels"]) <= set(entry["labels"]) and "rock" in entry["genre_labels"]
    assert "female vocalists" not in entry["genre_labels"]


def test_ensemble_members_merge_by_label():
    entry = build_web_models([("musicnn", "musicnn")]).manifest["models"][0]
    assert len(entry["members"]) == 2
    a, b = (m["labels"] for m in entry["members"])
    assert entry["labels"] == a + [lab for lab in b if lab not in a]
    assert len({g["file"] for m in entry["members"] for g in m["graphs"]}) == 2


def test_a_head_runs_behind_its_backbone(tmp_path):
    head = make_head(tmp_path / "head.onnx")
    web = build_web_models([("head", str(head)), ("musicnn-msd", "musicnn-msd")])
    h, bb = web.manifest["models"]
    assert "members" not in h
    (graph,) = h["head"]["backbone"]
    assert h["head"]["blocks"] == ["embeddings"] and h["head"]["output"] == "probabilities"
    assert h["labels"] == HEAD_LABELS and h["multi_label"] is False and h["genre_labels"] == HEAD_LABELS
    assert h["head"]["tag_labels"] == bb["labels"]  # the head reports the tagger's tags
    assert h["feature_config"] == bb["feature_config"] and h["window_frames"] == 187
    assert graph["file"] == bb["members"][0]["graphs"][0]["file"]  # the backbone is stored once
    assert len(web.files) == 2


def test_a_head_behind_an_ensemble_backbone(tmp_path):
    head = make_head(tmp_path / "h2.onnx", backbone="musicnn", blocks=("embeddings", "probabilities"))
    (h,) = build_web_models([("h2", str(head))]).manifest["models"]
    assert [g["file"].split("-")[1] for g in h["head"]["backbone"]] == ["msd", "mtt"]
    assert h["head"]["blocks"] == ["embeddings", "probabilities"]
    msd, mtt = (g["labels"] for g in h["head"]["backbone"])
    assert h["head"]["tag_labels"] == msd + [lab for lab in mtt if lab not in msd]


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
        for member in m["members"]:
            for g in member["graphs"]:
                assert (out / "webmodels" / g["file"]).is_file()
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
