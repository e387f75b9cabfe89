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

Every error is a 4xx/5xx status with the body ``{"error": "..."}`` and the security
headers (:mod:`genrescope.serve.request_guard`, which also checks Host and Origin). An upload takes
a job slot only once its body is in (:mod:`genrescope.serve.upload` bounds the body);
inference runs in a bounded pool (``max_jobs`` threads, each handing its jobs to a worker
process of its own; ``max_queue`` more may wait, then 429) within a time and a memory
budget (:mod:`genrescope.serve.jobs`, :mod:`genrescope.serve.workers`), so the event loop
never waits on a model, a job over its memory cannot take the server down, and a job
whose client left stops.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from genrescope.version import __version__
from genrescope.errors import GenrescopeError
from genrescope.serve.jobs import Budget, JobCancelled, JobGate, error_answer
from genrescope.serve.model_catalog import ModelCatalog
from genrescope.serve.settings import STATIC_DIR, Settings
from genrescope.serve.upload import BodyLimits, PendingBytes, UploadAborted, UploadError, receive_upload
from genrescope.serve.workers import ProcessJobs, ThreadJobs

log = logging.getLogger(__name__)


#: Top genres in a ``/api/predict`` answer when the form gives no ``top`` (the CLI's default).
DEFAULT_TOP = 5

_UPLOAD_BODY = {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "the audio file (wav, flac, ogg, mp3, ...)"},
        "model": {"type": "string", "description": "a model id from GET /api/models (default: the server's)"},
        "top": {"type": "integer", "description": f"genres to list, 0 = all (default {DEFAULT_TOP})"}}}}}}
_ERRORS = {400: {"description": "a host name this server does not answer to"},
           403: {"description": "a cross-site request (Origin of another website)"},
           408: {"description": "the body paused or took too long"},
           413: {"description": "file or request too large, audio too long, or over the job's memory budget"},
           415: {"description": "not a supported audio file"},
           422: {"description": "empty, corrupt, truncated or too short audio; an absurd header; bad form"},
           404: {"description": "unknown model"},
           429: {"description": "too many files in progress; retry later"},
           503: {"description": "the analysis took too long, or too many uploads in flight"}}


def _error(status: int, message: str) -> JSONResponse:
    headers = {"Retry-After": "2"} if status == 429 else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _parse_top(fields: dict) -> int | None:
    raw = fields.get("top", "").strip()
    if not raw:
        return DEFAULT_TOP
    if not re.fullmatch(r"[0-9]{1,6}", raw):  # str.isdigit() takes "²", which int() refuses
        raise UploadError(f"top must be a whole number >= 0, got {raw[:20]!r}")
    return int(raw) or None


class _App(FastAPI):
    """FastAPI whose whole stack, its error middleware included, sits inside the guard."""

    def build_middleware_stack(self):
        from genrescope.serve.request_guard import GuardedApp

        return GuardedApp(super().build_middleware_stack(), self.state.settings)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The web app: the page, the HTTP API and the live WebSocket, with ``settings``' limits."""
    settings = settings or Settings()
    catalog = ModelCatalog(settings.model, settings.model_dir, runtime=settings.runtime,
                           threads=settings.model_threads, max_models=settings.max_models,
                           backend=settings.backend, precision=settings.precision)

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
            app.state.runner.close()
            shutil.rmtree(app.state.upload_dir, ignore_errors=True)

    app = _App(title="genrescope", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description=__doc__.split("\n\n")[0] + "\n\nErrors answer `{\"error\": \"...\"}`. "
                  "The live microphone WebSocket (`/api/live`) is described in /docs.")
    app.state.settings, app.state.catalog = settings, catalog
    # worker processes start when a job first needs one, so building the app starts none
    app.state.runner = ProcessJobs(settings) if settings.isolate_jobs else ThreadJobs(catalog, settings)
    app.state.gate = JobGate(settings.max_jobs + settings.max_queue)
    app.state.pending = PendingBytes(int(settings.max_pending_mb * (1 << 20)))
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
        if isinstance(exc, UploadAborted):  # the client is gone: one line, no traceback
            log.info("%s %s: %s", request.method, request.url.path, exc)
        return _error(*error_answer(exc))

    @app.exception_handler(Exception)
    async def internal_error(request, exc):  # the traceback goes to the log (the guard), never to the client
        return _error(500, "internal error (see the server log)")


def _add_page_routes(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return FileResponse(STATIC_DIR / "docs.html", headers={"Cache-Control": "no-cache"})


def _add_api_routes(app: FastAPI, settings: Settings, catalog: ModelCatalog) -> None:
    _add_info_routes(app, settings, catalog)
    _add_predict_routes(app, settings, catalog)


def _add_info_routes(app: FastAPI, settings: Settings, catalog: ModelCatalog) -> None:
    """Health, configuration and the models on offer."""
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


def _add_predict_routes(app: FastAPI, settings: Settings, catalog: ModelCatalog) -> None:
    """The two upload endpoints: one JSON answer, or NDJSON events while the file is analysed."""
    @app.post("/api/predict", summary="Genres and timeline of one uploaded file",
              openapi_extra={"requestBody": _UPLOAD_BODY}, responses=_ERRORS)
    async def predict(request: Request):
        """The JSON object ``genrescope predict --format json --timeline`` prints for one file,
        with ``path`` = the uploaded file's name."""
        upload, entry, top = await _admit(request, app, catalog, settings)
        budget = Budget(settings.job_timeout_s)
        loop = asyncio.get_running_loop()
        try:
            job = loop.run_in_executor(app.state.jobs, app.state.runner.predict, entry.id, upload, top, budget)
            return JSONResponse(await _unless_client_leaves(request, job, budget))
        except JobCancelled:
            log.info("analysis of %s stopped: the client left", upload.filename)
            return _error(499, "the client closed the connection")
        except GenrescopeError as e:
            return _error(*error_answer(e, upload))
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
        budget = Budget(settings.job_timeout_s)
        loop = asyncio.get_running_loop()

        def emit(ev):
            loop.call_soon_threadsafe(events.put_nowait, ev)

        def run():
            try:
                app.state.runner.stream(entry.id, upload, top, emit, budget)
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
        return await _stream_answer(events, budget)


async def _stream_answer(events: asyncio.Queue, budget: Budget):
    """The NDJSON answer of a stream job; an error before the first windows gets a real HTTP status."""
    head = []  # events held back until the first windows
    try:
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
    except BaseException:
        budget.stop.set()
        raise

    async def body():
        try:
            for ev in head:
                yield _line(ev)
            while (ev := await events.get()) is not None:
                yield _line(ev)
        finally:
            budget.stop.set()  # the client left, or the job ended: stop analysing

    return StreamingResponse(body(), media_type="application/x-ndjson",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _unless_client_leaves(request: Request, job: asyncio.Future, budget: Budget):
    """``job``'s result; if the client disconnects first, stop the job (it raises JobCancelled)."""
    watch = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({job, watch}, return_when=asyncio.FIRST_COMPLETED)
        if not job.done():
            budget.stop.set()
        return await job
    finally:
        watch.cancel()


async def _disconnected(request: Request) -> None:
    """Returns when the client has closed the connection (the body has been read by then)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _admit(request: Request, app: FastAPI, catalog: ModelCatalog, settings: Settings):
    """Receive the upload and check the form, then take a job slot (429 if none); the caller frees both.

    The slot is taken only once the body is in, so slow uploads hold no worker: the body's
    own deadlines and byte budget bound them (:class:`~genrescope.serve.upload.BodyLimits`).
    """
    limits = BodyLimits(settings.max_body_bytes, settings.body_idle_s, settings.body_timeout_s, app.state.pending)
    upload = await receive_upload(request, app.state.upload_dir, max_bytes=settings.max_upload_bytes,
                                  limits=limits)
    try:
        entry = catalog.resolve(upload.fields.get("model"))
        top = _parse_top(upload.fields)
        app.state.gate.enter()
    except BaseException:
        upload.remove()
        raise
    return upload, entry, top


def _line(ev: dict) -> bytes:
    # allow_nan=False: an event is strict JSON or it is not sent (the analysis refuses NaN before this)
    return (json.dumps(ev, separators=(",", ":"), allow_nan=False) + "\n").encode()
