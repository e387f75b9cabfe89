"""beets plugin: genres from the audio itself, with genrescope (``pip install 'genrescope[beets]'``).

Enable it with ``plugins: genrescope`` in beets' config, then::

    beet genrescope [QUERY]        # predict and store the genre of matching items
    beet genrescope -w QUERY       # ... and let beets write the files' tags
    beet genrescope -f QUERY       # replace genres the items already have
    beet genrescope learn [QUERY] -o DIR   # learn a model from the items' genres (genrescope learn)

It stores the top genres in beets' genre field (``genres`` in beets 2, ``genre`` before)
and the scores with the model in the flexible attribute ``genrescope``
(``rock:0.62;pop:0.21;model=NAME``, the same text ``genrescope tag`` writes into files).
It uses the same core as ``genrescope tag`` (analysis, choice of genres, ownership of an
existing genre), so both give the same genres. Options (``genrescope:`` section)::

    auto: no             # tag items as they are imported
    model: default       # a shipped name, checkpoint, ONNX file or learnt model folder (then a
                         # genre is stored only where the learnt per-label threshold is reached)
    top: 1               # genres to store
    min_confidence: 0.0  # store only genres at least this probable
    windows: 0           # analyse N windows spread over each song (0: all)
    overwrite: no        # replace genres the items already have
    write: no            # write file tags without -w (beet genrescope never writes by default)
    learn_out: null      # where ``beet genrescope learn`` writes its model without -o
                         # (default: the genrescope models folder, as ``genrescope learn``)
    min_tracks: 3        # ``learn``: labels with fewer items are left out
    min_precision: 0.8   # ``learn``: the precision each label's threshold must reach
"""
from __future__ import annotations

from beets import ui
from beets.plugins import BeetsPlugin

from genrescope.errors import GenrescopeError
from genrescope.library import tags as T
from genrescope.library.core import analyse, choose, choose_sure, learnt_thresholds, make_predictor

#: The flexible attribute holding the scores.
ATTRIBUTE = "genrescope"


def _genre_field(item) -> str:
    return "genres" if "genres" in type(item)._fields else "genre"


def current_genres(item) -> list[str]:
    value = item.get(_genre_field(item))
    if not value:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [g.strip() for g in str(value).split(",") if g.strip()]


class GenrescopePlugin(BeetsPlugin):
    """``beet genrescope`` and the import stage."""

    def __init__(self, name: str | None = None):
        super().__init__("genrescope")
        self.config.add({"auto": False, "model": "default", "top": 1, "min_confidence": 0.0, "windows": 0,
                         "overwrite": False, "write": False, "learn_out": None, "min_tracks": 3,
                         "min_precision": 0.8})
        self._predictor = None
        self._learnt: dict | None | bool = False  # False: not looked up yet
        if self.config["auto"].get(bool):
            self.import_stages = [self.imported]

    @property
    def predictor(self):
        if self._predictor is None:  # the model loads once, at first use
            self._predictor = make_predictor(self.config["model"].as_str())
        return self._predictor

    def commands(self):
        cmd = ui.Subcommand("genrescope", help="predict genres from the audio with genrescope")
        cmd.parser.add_option("-w", "--write", action="store_true", dest="write", default=None,
                              help="write the new genres into the files' tags")
        cmd.parser.add_option("-W", "--nowrite", action="store_false", dest="write",
                              help="store the genres in the library only")
        cmd.parser.add_option("-f", "--force", action="store_true", dest="overwrite", default=None,
                              help="replace genres the items already have")
        cmd.parser.add_option("-p", "--pretend", action="store_true", default=False,
                              help="show the genres but change nothing")
        cmd.parser.add_option("-o", "--out", dest="out", default=None,
                              help="learn: the model folder to write")

        def func(lib, opts, args):
            if args and args[0] == "learn":
                self.learn(lib, args[1:], opts.out)
                return
            # opt-in, unlike beets' import.write default: the files change only when asked
            write = self.config["write"].get(bool) if opts.write is None else opts.write
            for item in lib.items(args):
                self.tag_item(item, write=write, pretend=opts.pretend, overwrite=opts.overwrite)

        cmd.func = func
        return [cmd]

    def learn(self, lib, query, out) -> None:
        """``beet genrescope learn [QUERY] [-o DIR]``: learn from the genres of the matching items."""
        from genrescope.learn.command import default_out, learn_tracks
        from genrescope.learn.labels import Track, split_genres

        tracks = []
        for item in lib.items(query):
            path = item.filepath if hasattr(item, "filepath") else item.path.decode()
            tracks.append(Track(str(path), split_genres(current_genres(item)), item.get("artist") or
                                item.get("albumartist") or None, item.get("album") or None))
        if not tracks:
            raise ui.UserError("genrescope learn: no items match the query")
        out = out or self.config["learn_out"].get() or default_out(["beets"])
        try:
            done = learn_tracks(tracks, out, min_tracks=self.config["min_tracks"].get(int),
                                min_precision=self.config["min_precision"].as_number(), progress=False,
                                say=lambda m: ui.print_(m), library="beets library " + " ".join(query),
                                label_source="beets genre field")
        except GenrescopeError as e:
            raise ui.UserError(str(e)) from e
        ui.print_(f"use it with `genrescope: {{model: {done.out}}}` in the beets config")

    @property
    def learnt(self) -> dict | None:
        """The model's learnt thresholds (None: not a learnt model)."""
        if self._learnt is False:
            self._learnt = learnt_thresholds(self.config["model"].as_str())
        return self._learnt

    def imported(self, session, task) -> None:
        for item in task.imported_items():
            self.tag_item(item, write=False)  # beets writes imported files itself

    def tag_item(self, item, *, write: bool = False, pretend: bool = False, overwrite: bool | None = None) -> bool:
        """Predict ``item``'s genres and store them; False when its audio cannot be read."""
        path = item.filepath if hasattr(item, "filepath") else item.path.decode()
        try:
            result = analyse(self.predictor, str(path), self.config["windows"].get(int))
        except GenrescopeError as e:
            self._log.warning("{}", e)
            return False
        genres, scores = choose(result["genres"], self.config["top"].get(int),
                                self.config["min_confidence"].as_number())
        if self.learnt is not None:  # a learnt model: only where its threshold for the label is reached
            genres, unsure, _ = choose_sure(result["genres"], self.learnt, self.config["min_confidence"].as_number())
            if unsure:
                self._log.info("{}: {}", item, unsure)
        scores_text = T.format_scores(scores, result["model"])
        existing = current_genres(item)
        force = self.config["overwrite"].get(bool) if overwrite is None else overwrite
        keep = bool(existing) and not force and not T.owns(existing, item.get(ATTRIBUTE))
        self._log.info("{}: {}{}", item, ", ".join(genres) or "(none)", " (existing genre kept)" if keep else "")
        if pretend:
            return True
        if genres and not keep:
            field = _genre_field(item)
            item[field] = list(genres) if field == "genres" else ", ".join(genres)
        item[ATTRIBUTE] = scores_text
        item.store()
        if write:
            item.try_write()
        return True
