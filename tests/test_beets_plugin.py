"""The beets plugin against a real beets library built with beets' own API and test helper:
`beet import` with `auto`, `beet genrescope [-w] [-f] QUERY`, items read back, and the same
genres as `genrescope tag` (one core). Skipped when beets (the `beets` extra) is absent."""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

pytest.importorskip("beets")
pytest.importorskip("mutagen")
from beets.library import Item  # noqa: E402
from beets.test.helper import PluginTestHelper  # noqa: E402

from genrescope.library import report as R  # noqa: E402
from genrescope.library import tags as T  # noqa: E402
from genrescope.library.tag_run import tag_library  # noqa: E402
from genrescope.library.core import TagOptions  # noqa: E402
from helpers.library import add_user_tags, write_track  # noqa: E402

MODEL = "gtzan-features"  # a real shipped model, small and fast


def _genres(item) -> list[str]:
    from beetsplug.genrescope import current_genres

    return current_genres(item)


class TestGenrescopePlugin(PluginTestHelper):
    plugin: ClassVar[str] = "genrescope"
    preload_plugin: ClassVar[bool] = False

    def _load(self, **config):
        self.config["genrescope"].set({"model": MODEL, "top": 2, **config})
        self.load_plugins("genrescope")

    def _files(self, tmp_path: Path) -> list[Path]:
        files = [write_track(tmp_path / "in" / f"song{i}.{fmt}", fmt, seconds=4.0, seed=i)
                 for i, fmt in enumerate(("mp3", "flac", "ogg"))]
        for i, p in enumerate(files):  # distinct titles: beets' importer skips duplicates
            add_user_tags(p, genre="Polka" if i == 1 else None)
        return files

    def test_command_stores_the_genres_of_genrescope_tag(self, tmp_path):
        files = self._files(tmp_path)
        self._load()
        for p in files:
            self.lib.add(Item.from_path(str(p)))
        expected = {r["path"]: r for r in tag_library([str(tmp_path / "in")], TagOptions(model=MODEL, top=2),
                                                       report_path=str(tmp_path / "r.csv"))}
        self.run_command("genrescope")
        for item in self.lib.items():
            rec = expected[item.filepath.as_posix() if hasattr(item, "filepath") else item.path.decode()]
            top2 = [g for g, _ in rec["genres"][:2]]
            if Path(rec["path"]).name == "song1.flac":
                assert _genres(item) == ["Polka"]  # the user's genre is kept without -f
            else:
                assert _genres(item) == top2
            scores, model = T.parse_scores(item["genrescope"])
            assert model == MODEL and [g for g, _ in scores] == top2
        # nothing was written into the files without -w
        assert all(T.read_snapshot(p)[1][T.genre_key(T.tag_kind(p))] in (None, ["Polka"]) for p in files)
        self.run_command("genrescope", "-w", "-f")
        for item in self.lib.items():
            kind, snap = T.read_snapshot(item.path.decode())
            assert snap[T.genre_key(kind)] == _genres(item) != ["Polka"]
        assert R.read(tmp_path / "r.csv")  # the report is a readable tag report

    def test_auto_tags_on_import(self, tmp_path):
        files = self._files(tmp_path)
        self._load(auto=True)
        self.config["import"].set({"autotag": False, "copy": False, "singletons": True, "quiet": True,
                                   "write": False})
        self.run_command("import", str(tmp_path / "in"))
        items = list(self.lib.items())
        assert len(items) == len(files)
        for item in items:
            assert item.get("genrescope", "").endswith(f"model={MODEL}")
            assert _genres(item)

    def test_pretend_and_bad_files(self, tmp_path):
        files = self._files(tmp_path)
        self._load()
        self.lib.add(Item.from_path(str(files[0])))
        self.run_command("genrescope", "-p")
        assert "genrescope" not in list(self.lib.items())[0]
        bad = Item.from_path(str(files[2]))
        self.lib.add(bad)
        files[2].write_bytes(b"gone bad")
        self.run_command("genrescope")  # warns and goes on
        assert "genrescope" in list(self.lib.items("song0"))[0]
        assert "genrescope" not in list(self.lib.items("song2"))[0]


class TestGenrescopeLearn(PluginTestHelper):
    """`beet genrescope learn` on the beets library's genres, then tagging with the learnt model."""

    plugin: ClassVar[str] = "genrescope"
    preload_plugin: ClassVar[bool] = False

    @pytest.mark.slow
    def test_learn_from_the_library_then_tag_above_the_thresholds(self, tmp_path, monkeypatch):
        import json

        from helpers.learn_library import make_learn_library

        monkeypatch.setenv("GENRESCOPE_CACHE", str(tmp_path / "cache"))
        lib, items = make_learn_library(tmp_path)
        self.config["genrescope"].set({"min_tracks": 3})
        self.load_plugins("genrescope")
        for it in items:
            self.lib.add(Item.from_path(str(lib / it.name)))
        out = tmp_path / "model"
        self.run_command("genrescope", "learn", "-o", str(out))
        cfg = json.loads((out / "config.json").read_text())
        assert cfg["kind"] == "learnt" and cfg["label_source"] == "beets genre field"
        assert {"Rock", "Hip-Hop", "Drum & Bass"} <= set(cfg["labels"])  # "Rap" and "Hip-Hop" stay apart: no aliases
        cfg["thresholds"] = {lab: (0.0 if lab == "Rock" else None) for lab in cfg["labels"]}
        (out / "config.json").write_text(json.dumps(cfg))
        self.unload_plugins()
        self.config["genrescope"].set({"model": str(out)})
        self.load_plugins("genrescope")
        self.run_command("genrescope")
        got = {Path(i.path.decode()).name: _genres(i) for i in self.lib.items()}
        assert got["untagged_0.mp3"] == ["Rock"]  # the Rock sound, and Rock is always sure enough
        assert got["untagged_1.flac"] == [] and got["untagged_2.ogg"] == []  # Hip-Hop: never sure
        assert got["Hip-Hop_0.mp3"] == ["Hip-Hop"]  # the items' own genres are kept
