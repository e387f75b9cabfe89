"""``WS /api/live``: microphone samples in, a genre estimate about every second out.

Protocol (JSON text messages, binary audio)::

    client -> {"sample_rate": 48000}                  first message: the rate of what follows
    server -> {"event": "ready", "model": ..., "labels": [...], "genre_labels": [...],
               "multi_label": bool, "seconds": 6.0, "interval_s": 1.0, ...}
    client -> binary frames: mono float32 little-endian samples, any length up to 1 MiB
    server -> {"event": "estimate", "t": seconds received, "seconds": seconds analysed,
               "level_db": RMS level, "genres": [{"label", "probability"}, ...],
               "tags": [...]}                         every ``interval_s`` seconds of audio
    server -> {"event": "error", "error": "..."}      then closes (1008 bad input, 1013 busy)

A socket that sends no audio for ``live_idle_s`` seconds is closed (1008), and when every
slot is taken a newcomer takes the slot of one silent for :data:`EVICT_SILENT_S` seconds, so
idle sockets cannot hold the ``max_live`` slots; a first message that is not a small JSON object is a
1008 error, never a crash. Browsers on other websites cannot open it (the Origin check of
:mod:`genrescope.serve.request_guard`). The query parameter ``model`` picks a model id from ``GET /api/models``. The server
resamples to the model's rate and computes the features itself
(:class:`~genrescope.serve.stream.LiveEstimator`); the browser only captures samples.
"""
from __future__ import annotations

import asyncio
import json
import logging

import numpy as np
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from genrescope.errors import GenrescopeError
from genrescope.serve.model_catalog import ModelCatalog
from genrescope.serve.settings import Settings
from genrescope.serve.stream import LiveEstimator

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 1 << 20
SAMPLE_RATES = (8000, 192000)
#: Seconds the client has to send its first message.
HELLO_TIMEOUT_S = 10.0
#: Longest first message (a JSON object with one number).
MAX_HELLO_CHARS = 1024
#: Seconds without audio after which a listener's slot may go to a newcomer when all are taken.
EVICT_SILENT_S = 3.0


class _Slot:
    """One live listener: its socket and when it last sent audio (or said hello)."""

    def __init__(self, ws: WebSocket, now: float):
        self.ws, self.heard = ws, now

    def silent_for(self, now: float) -> float:
        return now - self.heard


def _take_slot(slots: set, limit: int, ws: WebSocket) -> _Slot | None:
    """A slot for ``ws``: a free one, else the longest-silent listener's (closed), else None."""
    now = asyncio.get_running_loop().time()
    if len(slots) >= limit:
        silent = [s for s in slots if s.silent_for(now) >= EVICT_SILENT_S]
        if not silent:
            return None
        victim = max(silent, key=lambda s: s.silent_for(now))
        slots.discard(victim)
        asyncio.get_running_loop().create_task(_close_with_error(
            victim.ws, f"closed to make room: no audio for {victim.silent_for(now):.0f} s", 1008))
    slot = _Slot(ws, now)
    slots.add(slot)
    return slot


class _LiveError(Exception):
    def __init__(self, message: str, code: int = 1008):
        super().__init__(message)
        self.code = code


def add_live_route(app: FastAPI, settings: Settings, catalog: ModelCatalog) -> None:
    app.state.live_slots = set()  # the event loop is single-threaded: no lock needed

    @app.websocket("/api/live")
    async def live(ws: WebSocket, model: str | None = None):
        await ws.accept()
        slot = _take_slot(app.state.live_slots, settings.max_live, ws)
        if slot is None:
            await _close_with_error(ws, f"too many live listeners ({settings.max_live}); try again later", 1013)
            return
        try:
            await _session(ws, app, settings, catalog, model, slot)
        except WebSocketDisconnect:
            pass
        except _LiveError as e:
            await _close_with_error(ws, str(e), e.code)
        except GenrescopeError as e:
            await _close_with_error(ws, str(e), 1008)
        except Exception:  # a bug, not the client: one log entry, a clean close
            if slot not in app.state.live_slots:  # closed to make room for another listener
                return
            log.exception("live session failed")
            await _close_with_error(ws, "internal error (see the server log)", 1011)
        finally:
            app.state.live_slots.discard(slot)


async def _close_with_error(ws: WebSocket, message: str, code: int) -> None:
    try:
        await ws.send_json({"event": "error", "error": message})
        await ws.close(code=code)
    except (WebSocketDisconnect, RuntimeError):  # already gone
        pass


async def _receive(ws: WebSocket, timeout_s: float, what: str) -> dict:
    """The next message; a close ends the session, silence past ``timeout_s`` is an error."""
    try:
        msg = await asyncio.wait_for(ws.receive(), timeout_s)
    except asyncio.TimeoutError:
        raise _LiveError(f"{what}; closing") from None
    if msg["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(msg.get("code", 1000))
    return msg


async def _hello(ws: WebSocket) -> int:
    msg = await _receive(ws, HELLO_TIMEOUT_S, f'no {{"sample_rate": ...}} message within {HELLO_TIMEOUT_S:g} s')
    text = msg.get("text")
    bad = _LiveError('the first message must be the JSON text {"sample_rate": 48000}')
    if text is None or len(text) > MAX_HELLO_CHARS:
        raise bad
    try:
        msg = json.loads(text)
    except (ValueError, RecursionError):  # deeply nested arrays exhaust the parser's stack
        raise bad from None
    sr = msg.get("sample_rate") if isinstance(msg, dict) else None
    if isinstance(sr, bool) or not isinstance(sr, (int, float)) or not SAMPLE_RATES[0] <= sr <= SAMPLE_RATES[1]:
        raise _LiveError(f"sample_rate must be a number from {SAMPLE_RATES[0]} to {SAMPLE_RATES[1]}, got {sr!r}")
    return int(round(sr))


async def _session(ws: WebSocket, app: FastAPI, settings: Settings, catalog: ModelCatalog, model: str | None,
                   slot: _Slot):
    loop = asyncio.get_running_loop()
    entry = catalog.resolve(model)
    sr = await _hello(ws)
    info = await loop.run_in_executor(None, catalog.describe, entry.id)  # loads the model once
    est = LiveEstimator(catalog.get(entry.id), sr, settings.live_seconds)
    await ws.send_json({"event": "ready", **info, "seconds": settings.live_seconds,
                        "interval_s": settings.live_interval_s})
    next_at = settings.live_interval_s
    audio_by = loop.time() + settings.live_idle_s  # text keep-alives do not count as audio
    while True:
        msg = await _receive(ws, max(0.0, audio_by - loop.time()), f"no audio for {settings.live_idle_s:g} s")
        data = msg.get("bytes")
        if data is None:
            continue  # text after the hello is ignored (e.g. keep-alives)
        audio_by = slot.heard = loop.time()
        audio_by += settings.live_idle_s
        if len(data) > MAX_FRAME_BYTES or len(data) % 4:
            raise _LiveError(f"audio frames must be float32 samples, at most {MAX_FRAME_BYTES} bytes")
        est.push(np.frombuffer(data, "<f4"))
        if est.received_s < next_at:
            continue
        next_at = est.received_s + settings.live_interval_s
        # the model runs beside the event loop; frames that arrive meanwhile wait in the socket
        out = await loop.run_in_executor(app.state.live_pool, est.estimate, est.snapshot())
        if out is None:
            continue
        await ws.send_json({
            "event": "estimate", "t": round(est.received_s, 2), "seconds": out["seconds"],
            "level_db": out["level_db"],
            "genres": [{"label": g, "probability": round(p, 4)} for g, p in out["genres"]],
            "tags": [{"label": g, "probability": round(p, 4)} for g, p in (out["tags"] or [])[:8]]})
