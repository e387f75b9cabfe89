"""Connections that cannot be held open for nothing: a header deadline and a connection cap.

uvicorn's HTTP protocol (h11) waits for a request's headers as long as bytes keep coming
(its keep-alive timer restarts on every byte), and its ``limit_concurrency`` answers 503
to everyone once enough idle sockets are open. :func:`guarded_protocol` subclasses it:

* a connection has ``header_timeout_s`` to send its request line and headers, counted from
  when it opened or its previous response ended, however slowly it sends them (408);
* at most ``max_connections`` are open; when a new one would pass that, the connection that
  has waited longest for its request's headers is closed to make room, so idle or
  half-sent sockets cannot lock out a client that sends a whole request. Only when every
  connection is busy with a request does a newcomer get 503.

Request bodies have their own deadlines (:mod:`genrescope.serve.upload`); WebSockets are
out of this count once upgraded (the live route has its own cap and idle timeout).
"""
from __future__ import annotations

import json
import logging

log = logging.getLogger(__name__)

_HEADERS = (b"content-type: application/json\r\nconnection: close\r\nx-content-type-options: nosniff\r\n"
            b"referrer-policy: no-referrer\r\ncache-control: no-store\r\n")


def raw_error(status: int, reason: str, message: str) -> bytes:
    """A whole HTTP/1.1 error response with a JSON ``{"error": ...}`` body."""
    body = json.dumps({"error": message}).encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-length: {len(body)}\r\n".encode() + _HEADERS + b"\r\n" + body)


def guarded_protocol(max_connections: int, header_timeout_s: float):
    """An ``asyncio.Protocol`` class for ``uvicorn.Config(http=...)`` with the two guards above."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        _header_timer = None
        waiting_since = 0.0  # when this connection started waiting for a request's headers

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._await_headers()
            if len(self.connections) > max_connections:
                self._make_room()

        def _waiting(self) -> bool:
            return self.conn.their_state is h11.IDLE and (self.cycle is None or self.cycle.response_complete)

        def _make_room(self) -> None:
            idle = [c for c in self.connections if c is not self and getattr(c, "_waiting", None) and c._waiting()]
            if idle:
                oldest = min(idle, key=lambda c: c.waiting_since)
                oldest._refuse(408, "Request Timeout", "the connection sent no request while the server was full")
            else:
                log.warning("connection refused: %d connections are busy", len(self.connections) - 1)
                self._refuse(503, "Service Unavailable", "too many connections; try again in a moment")

        def _await_headers(self) -> None:
            self._cancel_header_timer()
            self.waiting_since = self.loop.time()
            self._header_timer = self.loop.call_later(header_timeout_s, self._header_deadline)

        def _cancel_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_deadline(self) -> None:
            self._header_timer = None
            if self._waiting():
                self._refuse(408, "Request Timeout", f"no complete request headers within {header_timeout_s:g} s")

        def _refuse(self, status: int, reason: str, message: str) -> None:
            self._cancel_header_timer()
            self.connections.discard(self)
            if not self.transport.is_closing():
                self.transport.write(raw_error(status, reason, message))
                self.transport.close()

        def handle_events(self) -> None:
            super().handle_events()
            if not self._waiting():  # the headers are in (or the socket was upgraded): no deadline now
                self._cancel_header_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._await_headers()  # a kept-alive connection gets the same deadline for its next request

        def connection_lost(self, exc) -> None:
            self._cancel_header_timer()
            super().connection_lost(exc)

    return GuardedH11Protocol
