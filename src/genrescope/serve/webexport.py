"""The page without a server: ``genrescope export --web DIR`` and the in-browser model manifest.

The in-browser mode (``static/local.js``, ``static/worker.js``) needs, for each model, its
ONNX graph and what the ONNX metadata says about it: the
:class:`~genrescope.config.FeatureConfig`, the labels, the input kind and the window. The
browser's onnxruntime-web cannot read custom ONNX metadata, so this module reads it here
(:class:`~genrescope.inference.onnx_model.OnnxModel`) and writes it into a small JSON
manifest, ``webmodels/manifest.json``::

    {"format": "genrescope-web", "format_version": 2, "default": ID,
     "models": [{"id", "name", "labels", "genre_labels", "multi_label", "input", "n_bins",
                 "feature_config", "window_frames", "window_hop_frames", "window_s", "window_hop_s",
                 "graph": {"file", "input", "output": "probabilities",
                           "tags": "tags" or null, "tag_labels": [...] or null}
                 or "head": {"backbone": {"file", "input", "row": [...], "tags": "probabilities",
                                          "tag_labels": [...]},
                             "file", "input", "output"}}],
     "unsupported": {ID: "why", ...},
     "limits": {"min_duration_s"}, "segments": {"switch_cost", "max_genres"}}

The page composes nothing: each model is one graph, run as it is. ``graph`` is a self-contained
graph (an export, a shipped tagger, a shipped ensemble or ``genre10``, each shipped as one graph
by :mod:`genrescope.training.fused_export`): its ``output`` is the answer, and ``tags``, when it
names one, is the output of the taggers' merged tags, labelled ``tag_labels``. ``head`` is a head
trained behind a shipped backbone (``train --backbone``, a ``genrescope learn`` model): the
backbone's one graph gives the head's input row (its ``row`` outputs concatenated in order, as
:mod:`genrescope.inference.backbone` builds it) and the tags it reports (``tags``, labelled
``tag_labels``); the head's graph then runs on the row. A head whose row cannot be read from its
backbone's one graph (the members' own tags of a shipped ensemble) is refused. Graph files are
named by content, so a backbone shared by several heads is stored and downloaded once.

``limits`` and ``segments`` are the Python constants the page's JavaScript follows
(:func:`page_constants`): the shortest audio analysed (``local.js``) and the segmentation's
switching cost and candidate genres (``insight.js``), read from here rather than copied.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from genrescope.version import __version__
from genrescope.errors import CheckpointError, GenrescopeError
from genrescope.serve.settings import STATIC_DIR

log = logging.getLogger(__name__)

WEB_FORMAT = "genrescope-web"
WEB_FORMAT_VERSION = 2
#: Feature kinds static/features.js computes.
BROWSER_KINDS = ("log_mel", "mfcc", "stft")
MANIFEST = "manifest.json"



@dataclass
class WebModels:
    """A manifest and the graph files it names (file name -> path on disk)."""

    manifest: dict
    files: dict[str, Path] = field(default_factory=dict)


def _graph_file(path: Path, stem: str, files: dict[str, Path]) -> str:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    name = f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', stem).strip('-') or 'model'}-{digest}.onnx"
    files[name] = path
    return name


def _check_browser_model(name: str, m) -> None:
    """Raise CheckpointError when static/features.js cannot feed the ONNX model ``m``."""
    cfg = m.feature_config
    if m.input_kind not in BROWSER_KINDS:
        raise CheckpointError(f"{name}: its input is {m.input_kind!r}; the browser computes only "
                              f"{', '.join(BROWSER_KINDS)}")
    if m.window_s is None:
        raise CheckpointError(f"{name}: whole-song models do not run in the browser yet (fixed windows only)")
    if cfg.n_fft & (cfg.n_fft - 1):
        raise CheckpointError(f"{name}: n_fft={cfg.n_fft} is not a power of two, which the browser's FFT needs")


def _onnx(name: str):
    """(display name, path, OnnxModel) of a shipped name or an ONNX file."""
    from genrescope.inference.onnx_model import OnnxModel
    from genrescope.inference.registry import resolve_model_path

    display, path = resolve_model_path(name)
    if path.suffix != ".onnx":
        raise CheckpointError(f"{name}: the browser runs ONNX exports; run `genrescope export {path}` first")
    return display, path, OnnxModel(path, threads=1)


def _check_front(name: str, m) -> None:
    """The graph that reads the windows: features the browser computes, one window at a time."""
    _check_browser_model(name, m)
    if not m.dynamic_time and m.input_frames != m.window_frames:
        raise CheckpointError(f"{name}: the graph takes T={m.input_frames}, not one window")


def _graph(display: str, path: Path, m, files: dict[str, Path]) -> dict:
    """A self-contained graph: its answer in ``probabilities``, its taggers' merged tags (if any) in ``tags``."""
    from genrescope.inference.onnx_model import INPUT_NAME, OUTPUT_NAME, TAGS_OUTPUT

    tagged = bool(m.tag_labels)
    return {"file": _graph_file(path, display, files), "input": INPUT_NAME, "output": OUTPUT_NAME,
            "tags": TAGS_OUTPUT if tagged else None, "tag_labels": list(m.tag_labels) if tagged else None}


def _backbone(display: str, head, files: dict[str, Path]) -> tuple[dict, object]:
    """The one graph of the shipped backbone behind ``head`` and the outputs that make the head's row.

    A shipped ensemble runs as its fused graph, whose ``embeddings`` are the members' embeddings side
    by side (the row of blocks ``["embeddings"]``) and whose ``probabilities`` are their merged tags;
    a row with the members' own tags in it cannot be read from that graph.
    """
    from genrescope.inference.backbone import EMBEDDINGS_OUTPUT, TAGS_OUTPUT, check_blocks
    from genrescope.inference.onnx_model import INPUT_NAME
    from genrescope.inference.registry import ENSEMBLES, pretrained_names

    name = head.provenance["backbone"]
    if name not in pretrained_names():
        raise CheckpointError(f"{display}: its backbone {str(name)[:80]!r} is not a shipped model")
    blocks = list(check_blocks(head.provenance.get("backbone_blocks") or [EMBEDDINGS_OUTPUT], f"{display}: its "))
    if name in ENSEMBLES and blocks != [EMBEDDINGS_OUTPUT]:
        raise CheckpointError(f"{display}: the browser runs {name} as one graph, which gives the row of blocks "
                              f"{[EMBEDDINGS_OUTPUT]} only, not {blocks} (each tagger's own tags)")
    bdisplay, bpath, bm = _onnx(name)
    missing = [b for b in (*blocks, TAGS_OUTPUT) if b not in bm.outputs]
    if missing:
        raise CheckpointError(f"{display}: its backbone {name} has no {missing[0]!r} output")
    return {"file": _graph_file(bpath, bdisplay, files), "input": INPUT_NAME, "row": blocks, "tags": TAGS_OUTPUT,
            "tag_labels": list(bm.labels)}, bm


def model_entry(model_id: str, name: str, files: dict[str, Path]) -> dict:
    """The manifest entry of one model: ``graph`` for a self-contained graph (a shipped name, a
    fused ensemble, an ONNX file), ``head`` for a head behind a shipped backbone (its tags are the
    backbone's, like the Python path's)."""
    from genrescope.inference.onnx_model import INPUT_NAME, OUTPUT_NAME
    from genrescope.inference.registry import DEFAULT_MODEL
    from genrescope.inference.taxonomy import genre_labels_of

    resolved = DEFAULT_MODEL if name == "default" else name
    display, path, m = _onnx(resolved)
    multi = m.metadata.get("output_activation", "softmax") == "sigmoid"
    if m.provenance.get("backbone"):
        backbone, front = _backbone(display, m, files)
        run = {"head": {"backbone": backbone, "file": _graph_file(path, display, files), "input": INPUT_NAME,
                        "output": OUTPUT_NAME}}
    else:
        front, run = m, {"graph": _graph(display, path, m, files)}
    _check_front(resolved, front)
    labels, cfg = list(m.labels), front.feature_config
    entry = {"id": model_id, "name": _model_id(resolved), "labels": labels,
             "genre_labels": genre_labels_of(labels, multi), "multi_label": multi, "input": front.input_kind,
             "n_bins": front.n_bins, "feature_config": cfg.to_dict(), "window_frames": front.window_frames,
             "window_hop_frames": cfg.window_hop_frames, "window_s": round(front.window_frames / cfg.frame_rate, 4),
             "window_hop_s": round(cfg.window_hop_frames / cfg.frame_rate, 4)}
    return {**entry, **run}


def page_constants() -> dict:
    """The Python constants the page's JavaScript reads from the manifest instead of copying them."""
    from genrescope.inference.pipeline import MIN_DURATION_S
    from genrescope.insight.segments import MAX_GENRES, SWITCH_COST

    return {"limits": {"min_duration_s": MIN_DURATION_S},
            "segments": {"switch_cost": SWITCH_COST, "max_genres": MAX_GENRES}}


def build_web_models(models: list[tuple[str, str]], *, strict: bool = True) -> WebModels:
    """The manifest of ``models`` ((id, name) pairs); with ``strict=False`` a model the browser
    cannot run is listed under ``unsupported`` instead of raising."""
    files: dict[str, Path] = {}
    entries, unsupported = [], {}
    for model_id, name in models:
        try:
            entries.append(model_entry(model_id, name, files))
        except GenrescopeError as e:
            if strict:
                raise
            unsupported[model_id] = str(e)
    if not entries and strict:
        raise GenrescopeError("export --web: no model to export")
    manifest = {"format": WEB_FORMAT, "format_version": WEB_FORMAT_VERSION, "genrescope_version": __version__,
                "default": entries[0]["id"] if entries else None, "models": entries, "unsupported": unsupported,
                **page_constants()}
    return WebModels(manifest, files)


def _model_id(model: str) -> str:
    """The page's id of a model: a shipped name as it is, a file by its display name (never its path)."""
    from genrescope.inference.registry import resolve_model_path

    return resolve_model_path(model)[0] if Path(model).is_file() else model


def export_web(out_dir: str | Path, models: list[str]) -> Path:
    """Write the serverless page into ``out_dir``: index.html, static/, webmodels/ and the app files.

    Any static file server can serve ``out_dir`` (e.g. ``python -m http.server -d DIR``); the
    page then analyses files in the browser with no genrescope process.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise GenrescopeError(f"{out}: exists and is not a folder")
    web = build_web_models([(_model_id(m), m) for m in models])
    out.mkdir(parents=True, exist_ok=True)
    static = STATIC_DIR
    if (out / "static").exists():
        shutil.rmtree(out / "static")
    shutil.copytree(static, out / "static", ignore=shutil.ignore_patterns("__pycache__", "docs.*"))
    html = (static / "index.html").read_text()
    (out / "index.html").write_text(html.replace('<html lang="en">', '<html lang="en" data-mode="static">', 1))
    for name in ("sw.js", "manifest.webmanifest"):
        if (static / name).is_file():
            shutil.copyfile(static / name, out / name)
    models_dir = out / "webmodels"
    if models_dir.exists():
        shutil.rmtree(models_dir)
    models_dir.mkdir()
    for name, path in web.files.items():
        shutil.copyfile(path, models_dir / name)
    (models_dir / MANIFEST).write_text(json.dumps(web.manifest, indent=1))
    return out


def add_web_routes(app, catalog) -> None:
    """Routes of the served page's in-browser mode and app files: ``/webmodels/manifest.json``
    (every model on offer that the browser can run), its graph files (by manifest name only,
    never a client's path), ``/sw.js`` and ``/manifest.webmanifest``."""
    import asyncio
    import threading

    from fastapi.responses import FileResponse, JSONResponse

    from genrescope.serve.model_catalog import UnknownModelError

    built: dict[str, WebModels] = {}
    lock = threading.Lock()

    def web() -> WebModels:
        with lock:  # built once, on first use: it opens every model's graph to read its metadata
            if "web" not in built:
                built["web"] = build_web_models([(e.id, e.source) for e in catalog.entries()], strict=False)
            return built["web"]

    @app.get("/webmodels/manifest.json", include_in_schema=False)
    async def web_manifest():
        w = await asyncio.get_running_loop().run_in_executor(None, web)
        return JSONResponse(w.manifest, headers={"Cache-Control": "no-cache"})

    @app.get("/webmodels/{name}", include_in_schema=False)
    async def web_graph(name: str):
        w = await asyncio.get_running_loop().run_in_executor(None, web)
        if name not in w.files:
            raise UnknownModelError(f"no in-browser model file {name!r}")
        return FileResponse(w.files[name], media_type="application/octet-stream")

    for route, media in (("sw.js", "text/javascript"), ("manifest.webmanifest", "application/manifest+json")):
        def page_file(route=route, media=media):
            return FileResponse(STATIC_DIR / route, media_type=media, headers={"Cache-Control": "no-cache"})

        app.add_api_route(f"/{route}", page_file, methods=["GET"], include_in_schema=False)
