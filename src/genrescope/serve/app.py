"""The HTTP API and the page: ``create_app(settings)`` builds the FastAPI application.

Routes (the page uses exactly these; ``/openapi.json`` describes the HTTP ones and
``/docs`` renders it without any CDN):

* ``GET  /api/config``           limits, default model, live settings
* ``GET  /api/models``           the models on offer; ``GET /api/models/{id}`` loads one
* ``POST /api/predict``          multipart ``file`` (+ ``model``, ``top``): the JSON object
  ``genrescope predict --format json --timeline`` prints for one file
* ``POST /api/predict/stream``   the same upload; newline-delimited JSON events while it
  is analysed (``start``, ``windows``..., then ``result`` or ``error``)
* ``WS   /api/live``             microphone samples in, a genre estimate every second out
  (see :mod:`genrescope.serve.live`)

Every error is a 4xx status with the body ``{"error": "..."}``. Inference runs in a
bounded worker pool (``max_jobs`` threads; ``max_queue`` more may wait, then 429), so the
event loop never waits on a model.
"""
from __future__ import annotations

import asyncio
import json
import logging
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from genrescope import __version__
from genrescope.errors import (AudioError, AudioTooShortError, CheckpointError, CorruptAudioError,
                               EmptyAudioError, GenrescopeError, UnsupportedAudioError)
from genrescope.serve.models import ModelCatalog, UnknownModelError
from genrescope.serve.settings import Settings
from genrescope.serve.stream import AudioTooLongError, TimelineStream
from genrescope.serve.upload import Upload, UploadError, receive_upload

log = logging.getLogger(__name__)

STATIC_DIR = Path(str(resources.files("genrescope") / "serve" / "static"))

#: Top genres in a ``/api/predict`` answer when the form gives no ``top`` (the CLI's default).
DEFAULT_TOP = 5

_UPLOAD_BODY = {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "the audio file (wav, flac, ogg, mp3, ...)"},
        "model": {"type": "string", "description": "a model id from GET /api/models (default: the server's)"},
        "top": {"type": "integer", "description": f"genres to list, 0 = all (default {DEFAULT_TOP})"}}}}}}
_ERRORS = {413: {"description": "file too large or audio too long"},
           415: {"description": "not a supported audio file"},
           422: {"description": "empty, corrupt, truncated or too short audio; bad form"},
           404: {"description": "unknown model"},
           429: {"description": "too many files in progress; retry later"}}


class TooBusyError(GenrescopeError):
    """Every worker is busy and the queue is full."""


class JobGate:
    """Admits at most ``limit`` jobs at a time (running plus waiting for a worker)."""

    def __init__(self, limit: int):
        self.limit, self.active = limit, 0
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            if self.active >= self.limit:
                raise TooBusyError(f"the server is busy ({self.active} files in progress); try again in a moment")
            self.active += 1

    def leave(self) -> None:
        with self._lock:
            self.active -= 1


def error_status(err: Exception) -> int:
    """HTTP status of an error a request can cause."""
    if isinstance(err, UploadError):
        return err.status
    for cls, status in ((TooBusyError, 429), (UnknownModelError, 404), (AudioTooLongError, 413),
                        (UnsupportedAudioError, 415), (EmptyAudioError, 422), (CorruptAudioError, 422),
                        (AudioTooShortError, 422), (CheckpointError, 500), (GenrescopeError, 422)):
        if isinstance(err, cls):
            return status
    return 500


def public_message(err: Exception, upload: Upload | None = None) -> str:
    """The error as the client may see it: about the client's file name, never a server path."""
    if isinstance(err, AudioError) and upload is not None:
        reason = err.reason.replace(str(upload.path), upload.filename).replace(str(upload.path.parent), "")
        return f"{upload.filename}: {reason}"
    if isinstance(err, GenrescopeError):
        return str(err)
    return "internal error (see the server log)"


def _error(status: int, message: str) -> JSONResponse:
    headers = {"Retry-After": "2"} if status == 429 else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _parse_top(fields: dict) -> int | None:
    raw = fields.get("top", "").strip()
    if not raw:
        return DEFAULT_TOP
    if not raw.isdigit():
        raise UploadError(f"top must be a whole number >= 0, got {raw!r}")
    return int(raw) or None


def create_app(settings: Settings | None = None) -> FastAPI:
    """The web app: the page, the HTTP API and the live WebSocket, with ``settings``' limits."""
    settings = settings or Settings()
    catalog = ModelCatalog(settings.model, settings.model_dir, runtime=settings.runtime,
                           threads=settings.model_threads)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        tmp_parent = str(settings.tmp_dir) if settings.tmp_dir else None
        app.state.upload_dir = Path(tempfile.mkdtemp(prefix="genrescope-uploads-", dir=tmp_parent))  # mode 0700
        app.state.jobs = ThreadPoolExecutor(settings.max_jobs, thread_name_prefix="genrescope-job")
        app.state.live_pool = ThreadPoolExecutor(1, thread_name_prefix="genrescope-live")
        await asyncio.get_running_loop().run_in_executor(app.state.jobs, catalog.get, catalog.default)
        try:
            yield
        finally:
            app.state.jobs.shutdown(wait=True, cancel_futures=True)
            app.state.live_pool.shutdown(wait=True, cancel_futures=True)
            shutil.rmtree(app.state.upload_dir, ignore_errors=True)

    app = FastAPI(title="genrescope", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description=__doc__.split("\n\n")[0] + "\n\nErrors answer `{\"error\": \"...\"}`. "
                  "The live microphone WebSocket (`/api/live`) is described in /docs.")
    app.state.settings, app.state.catalog = settings, catalog
    app.state.gate = JobGate(settings.max_jobs + settings.max_queue)
    _install_error_handlers(app)
    _add_page_routes(app)
    from genrescope.serve.webexport import add_web_routes

    add_web_routes(app, catalog)  # the in-browser mode's models, the service worker, the app manifest
    _add_api_routes(app, settings, catalog)
    from genrescope.serve.live import add_live_route

    add_live_route(app, settings, catalog)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc):
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, exc):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()))
        return _error(422, f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(GenrescopeError)
    async def genrescope_error(request, exc):
        return _error(error_status(exc), public_message(exc))

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        # everything the page loads comes from this server: a CDN request would be blocked
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; media-src 'self' blob:; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            # 'wasm-unsafe-eval': the in-browser mode compiles onnxruntime-web's WebAssembly (no JS eval)
            "connect-src 'self' ws: wss:; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; object-src 'none'; "
            "base-uri 'none'; frame-ancestors 'none'")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response


def _add_page_routes(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return FileResponse(STATIC_DIR / "docs.html", headers={"Cache-Control": "no-cache"})


def _add_api_routes(app: FastAPI, settings: Settings, catalog: ModelCatalog) -> None:
    @app.get("/api/health", summary="Liveness check")
    async def health():
        return {"status": "ok", "version": __version__}

    @app.get("/api/config", summary="Limits, default model and live-audio settings")
    async def config():
        from genrescope.audio.decode import AUDIO_EXTENSIONS

        return {"version": __version__, "default_model": catalog.default, "limits": settings.limits(),
                "live": {"seconds": settings.live_seconds, "interval_s": settings.live_interval_s},
                "extensions": list(AUDIO_EXTENSIONS)}

    @app.get("/api/models", summary="The models on offer")
    async def models():
        return {"default": catalog.default,
                "models": [{**e.to_dict(), "loaded": catalog.is_loaded(e.id)} for e in catalog.entries()]}

    @app.get("/api/models/{model_id:path}", summary="Load a model (once) and describe it",
             responses={404: _ERRORS[404]})
    async def model_info(model_id: str):
        catalog.resolve(model_id)
        return await asyncio.get_running_loop().run_in_executor(None, catalog.describe, model_id)

    @app.post("/api/predict", summary="Genres and timeline of one uploaded file",
              openapi_extra={"requestBody": _UPLOAD_BODY}, responses=_ERRORS)
    async def predict(request: Request):
        """The JSON object ``genrescope predict --format json --timeline`` prints for one file,
        with ``path`` = the uploaded file's name."""
        upload, entry, top = await _admit(request, app, catalog, settings)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(app.state.jobs, _predict_job, catalog, entry.id, upload, top,
                                              settings.max_duration_s)
        except GenrescopeError as e:
            return _error(error_status(e), public_message(e, upload))
        finally:
            upload.remove()
            app.state.gate.leave()

    @app.post("/api/predict/stream", summary="The timeline of one uploaded file, window by window",
              openapi_extra={"requestBody": _UPLOAD_BODY}, responses={
                  **_ERRORS, 200: {"description": "newline-delimited JSON events: start, windows (repeated), "
                                                  "then result (the /api/predict object) or error",
                                   "content": {"application/x-ndjson": {}}}})
    async def predict_stream(request: Request):
        upload, entry, top = await _admit(request, app, catalog, settings)
        events: asyncio.Queue = asyncio.Queue()
        stop = threading.Event()
        loop = asyncio.get_running_loop()

        def emit(ev):
            loop.call_soon_threadsafe(events.put_nowait, ev)

        job = _StreamJob(catalog, entry.id, upload, top, settings.max_duration_s, emit, stop)

        def run():
            try:
                job()
            finally:
                upload.remove()
                app.state.gate.leave()
                emit(None)

        try:
            loop.run_in_executor(app.state.jobs, run)
        except RuntimeError:  # the pool is shutting down
            upload.remove()
            app.state.gate.leave()
            raise
        head = []  # events held back until the first windows: an early error gets a real HTTP status
        while True:
            ev = await events.get()
            if ev is None:
                return _error(500, "the analysis ended without a result")
            if ev["event"] == "error":
                while await events.get() is not None:  # the job's end: its upload is removed by then
                    pass
                return _error(ev["status"], ev["error"])
            head.append(ev)
            if ev["event"] != "start":
                break

        async def body():
            try:
                for ev in head:
                    yield _line(ev)
                while (ev := await events.get()) is not None:
                    yield _line(ev)
            finally:
                stop.set()  # the client left, or the job ended: stop analysing

        return StreamingResponse(body(), media_type="application/x-ndjson",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _admit(request: Request, app: FastAPI, catalog: ModelCatalog, settings: Settings):
    """Take a job slot (429 if none), receive the upload and check the form; the caller frees both."""
    app.state.gate.enter()
    upload = None
    try:
        upload = await receive_upload(request, app.state.upload_dir, max_bytes=settings.max_upload_bytes)
        entry = catalog.resolve(upload.fields.get("model"))
        return upload, entry, _parse_top(upload.fields)
    except BaseException:
        if upload is not None:
            upload.remove()
        app.state.gate.leave()
        raise


def _check_header(upload: Upload, max_duration_s: float) -> float:
    """The duration the header declares; raises for unreadable or too long audio before decoding."""
    from genrescope.audio.decode import audio_info

    info = audio_info(upload.path)
    if info.duration_s > max_duration_s:
        raise AudioTooLongError(upload.path, f"is {info.duration_s:.1f} s long; the limit is {max_duration_s:g} s")
    return info.duration_s


def _predict_job(catalog: ModelCatalog, model_id: str, upload: Upload, top: int | None,
                 max_duration_s: float) -> JSONResponse:
    """Worker thread: the CLI's prediction of one file, as its JSON object."""
    predictor = catalog.get(model_id)
    _check_header(upload, max_duration_s)
    pred = predictor.predict(upload.path, duration=max_duration_s + 1.0)
    if pred.duration_s > max_duration_s:
        raise AudioTooLongError(upload.path, f"is longer than the limit of {max_duration_s:g} s")
    pred.path = upload.filename
    return JSONResponse(pred.to_dict(timeline=True, top=top))


class _StreamJob:
    """Worker thread: decode and predict one file, emitting events as windows are done."""

    def __init__(self, catalog, model_id, upload: Upload, top, max_duration_s, emit, stop: threading.Event):
        self.catalog, self.model_id, self.upload, self.top = catalog, model_id, upload, top
        self.max_duration_s, self.emit, self.stop = max_duration_s, emit, stop

    def __call__(self) -> None:
        try:
            if self.stop.is_set():
                return
            predictor = self.catalog.get(self.model_id)
            header_s = _check_header(self.upload, self.max_duration_s)
            info = self.catalog.describe(self.model_id)
            self.emit({**info, "event": "start", "file": self.upload.filename, "duration_s": round(header_s, 3),
                       "size": self.upload.size})
            stream = TimelineStream(predictor, self.upload.path, name=self.upload.filename,
                                    max_duration_s=self.max_duration_s)
            for chunk in stream:
                if self.stop.is_set():
                    return
                partial = stream.partial()
                self.emit({"event": "windows", "start_s": _r(chunk.start_s, 3), "end_s": _r(chunk.end_s, 3),
                           "probabilities": _r(chunk.probs, 4), "decoded_s": round(chunk.decoded_s, 3),
                           "genres": [{"label": g, "probability": round(p, 4)} for g, p in partial.genres]})
            self.emit({"event": "result", "result": stream.prediction.to_dict(timeline=True, top=self.top)})
        except GenrescopeError as e:
            self.emit({"event": "error", "status": error_status(e), "error": public_message(e, self.upload)})
        except Exception:
            log.exception("analysis of an upload failed")
            self.emit({"event": "error", "status": 500, "error": "internal error (see the server log)"})


def _r(a: np.ndarray, digits: int) -> list:
    return np.round(np.asarray(a, np.float64), digits).tolist()


def _line(ev: dict) -> bytes:
    return (json.dumps(ev, separators=(",", ":")) + "\n").encode()
