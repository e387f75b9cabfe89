"""The page without a server: ``genrescope export --web DIR`` and the in-browser model manifest.

The in-browser mode (``static/local.js``, ``static/worker.js``) needs, for each model, its
ONNX graph(s) and what the ONNX metadata says about them: the
:class:`~genrescope.config.FeatureConfig`, the labels, the input kind and the window. The
browser's onnxruntime-web cannot read custom ONNX metadata, so this module reads it here
(:class:`~genrescope.inference.onnx_model.OnnxModel`) and writes it into a small JSON
manifest, ``webmodels/manifest.json``::

    {"format": "genrescope-web", "format_version": 1, "default": ID,
     "models": [{"id", "name", "labels", "genre_labels", "multi_label", "input", "n_bins",
                 "feature_config", "window_frames", "window_hop_frames", "window_s", "window_hop_s",
                 "members": [{"labels": [...], "graphs": [{"file", "input", "output"}, ...]}]}],
     "unsupported": {ID: "why", ...}}

A member is a chain of graphs run in sequence (a shipped backbone's ``embeddings`` into a
head trained on them); several members are an ensemble, merged label by label as
:func:`genrescope.inference.ensemble.ensemble` does. Graph files are named by content, so a
backbone shared by several heads is stored and downloaded once.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from genrescope import __version__
from genrescope.errors import CheckpointError, GenrescopeError

log = logging.getLogger(__name__)

WEB_FORMAT = "genrescope-web"
WEB_FORMAT_VERSION = 1
#: Feature kinds static/features.js computes.
BROWSER_KINDS = ("log_mel", "mfcc", "stft")
MANIFEST = "manifest.json"


def _static_dir() -> Path:
    from importlib import resources

    return Path(str(resources.files("genrescope") / "serve" / "static"))


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


def _member(name: str, files: dict[str, Path]) -> tuple[dict, object]:
    """One chain of graphs for a shipped name or ONNX file, and the ONNX model whose features it reads."""
    from genrescope.inference.onnx_model import OnnxModel
    from genrescope.inference.registry import resolve_model_path

    display, path = resolve_model_path(name)
    if path.suffix != ".onnx":
        raise CheckpointError(f"{name}: the browser runs ONNX exports; run `genrescope export {path}` first")
    head = OnnxModel(path, threads=1)
    backbone = head.provenance.get("backbone")
    multi = head.metadata.get("output_activation", "softmax") == "sigmoid"
    if backbone:
        _, bpath = resolve_model_path(backbone)
        front = OnnxModel(bpath, threads=1)
        if "embeddings" not in front.outputs:
            raise CheckpointError(f"{name}: its backbone {backbone} has no 'embeddings' output")
        graphs = [{"file": _graph_file(bpath, backbone, files), "input": "features", "output": "embeddings"},
                  {"file": _graph_file(path, display, files), "input": "features", "output": "probabilities"}]
    else:
        front = head
        graphs = [{"file": _graph_file(path, display, files), "input": "features", "output": "probabilities"}]
    _check_browser_model(name, front)
    if not front.dynamic_time and front.input_frames != front.window_frames:
        raise CheckpointError(f"{name}: the graph takes T={front.input_frames}, not one window")
    return {"labels": list(head.labels), "graphs": graphs, "multi_label": multi}, front


def model_entry(model_id: str, name: str, files: dict[str, Path]) -> dict:
    """The manifest entry of one model (a shipped name, an ensemble, or an ONNX file)."""
    from genrescope.inference.registry import DEFAULT_MODEL, ENSEMBLES
    from genrescope.inference.taxonomy import genre_labels_of

    resolved = DEFAULT_MODEL if name == "default" else name
    parts = [_member(n, files) for n in ENSEMBLES.get(resolved, (resolved,))]
    front = parts[0][1]
    for _, other in parts[1:]:
        if (other.feature_config, other.input_kind, other.window_frames) != \
                (front.feature_config, front.input_kind, front.window_frames):
            raise CheckpointError(f"ensemble {resolved}: its members read different features")
    labels: list[str] = []
    for member, _ in parts:
        labels += [lab for lab in member["labels"] if lab not in labels]
    multi = all(member.pop("multi_label") for member, _ in parts)
    cfg = front.feature_config
    return {"id": model_id, "name": _model_id(resolved), "labels": labels, "genre_labels": genre_labels_of(labels, multi),
            "multi_label": multi, "input": front.input_kind, "n_bins": front.n_bins,
            "feature_config": cfg.to_dict(), "window_frames": front.window_frames,
            "window_hop_frames": cfg.window_hop_frames,
            "window_s": round(front.window_frames / cfg.frame_rate, 4),
            "window_hop_s": round(cfg.window_hop_frames / cfg.frame_rate, 4),
            "members": [member for member, _ in parts]}


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
                "default": entries[0]["id"] if entries else None, "models": entries, "unsupported": unsupported}
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
    static = _static_dir()
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


def run_export_cli(args) -> int:
    """``genrescope export``: ``--web DIR`` writes the serverless page, else the ONNX export of a checkpoint."""
    if not getattr(args, "web", None):
        if not args.checkpoint:
            raise GenrescopeError("export: give a CHECKPOINT to export to ONNX, or --web DIR")
        from genrescope.training.export import run_export

        return run_export(args)
    models = list(args.model or []) + ([args.checkpoint] if args.checkpoint else [])
    out = export_web(args.web, models or ["default"])
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    manifest = json.loads((out / "webmodels" / MANIFEST).read_text())
    print(f"wrote {out} ({total / 1e6:.1f} MB): models {', '.join(m['id'] for m in manifest['models'])}")
    print(f"serve it with any static file server, e.g.: python -m http.server -b 127.0.0.1 -d {out} 8000")
    return 0


def add_web_routes(app, catalog) -> None:
    """Routes of the served page's in-browser mode and app files: ``/webmodels/manifest.json``
    (every model on offer that the browser can run), its graph files (by manifest name only,
    never a client's path), ``/sw.js`` and ``/manifest.webmanifest``."""
    import asyncio
    import threading

    from fastapi.responses import FileResponse, JSONResponse

    from genrescope.serve.models import UnknownModelError

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
            return FileResponse(_static_dir() / route, media_type=media, headers={"Cache-Control": "no-cache"})

        app.add_api_route(f"/{route}", page_file, methods=["GET"], include_in_schema=False)
