"""The outermost layer of the app: which requests a browser may make, and the headers of every answer.

* **Host** (DNS rebinding): a page on ``attacker.example`` whose name is re-pointed at
  127.0.0.1 would otherwise read this server's API as its own origin. A request must name
  the server by an IP address or an allowed host name (``Settings.hosts``); else 400.
* **Origin** (cross-site requests): a browser names the page that sends a POST or opens a
  WebSocket. One from another origin than the server's own is refused (403) unless
  ``Settings.allow_origins`` lists it. Clients that are not browsers send no Origin.
* **Headers**: every HTTP answer, errors and 500s included, carries the security headers;
  the CSP lets the page connect back to its own origin only (``http``, ``ws``).

:class:`GuardedApp` wraps the whole Starlette stack, its error middleware included, so even
an answer that app did not expect goes out with these headers and as JSON.
"""
from __future__ import annotations

import ipaddress
import json
import logging
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

#: Methods that change nothing; a foreign Origin may make them (the browser keeps the answer from it).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_CSP = ("default-src 'self'; media-src 'self' blob:; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        # 'wasm-unsafe-eval': the in-browser mode compiles onnxruntime-web's WebAssembly (no JS eval)
        "connect-src 'self' {ws}; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'")


def split_host(value: str) -> tuple[str, str]:
    """``("example.org", "8000")`` from a Host header (IPv6 in brackets); ``("", "")`` when malformed."""
    try:
        parts = urlsplit(f"//{value}")
        host, port = (parts.hostname or ""), parts.port
    except ValueError:
        return "", ""
    return host.lower(), "" if port is None else str(port)


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def host_allowed(header: str, allowed: frozenset[str]) -> bool:
    """An IP address (no DNS name can be re-pointed at it) or an allowed name."""
    host, _ = split_host(header)
    return bool(host) and (is_ip(host) or host in allowed)


def origin_allowed(origin: str, host_header: str, allow: tuple[str, ...]) -> bool:
    """The request's own origin, or one ``allow`` names (``"*"``: any)."""
    if "*" in allow or origin.rstrip("/") in {a.rstrip("/") for a in allow}:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    default = 443 if parts.scheme == "https" else 80
    try:
        port = parts.port or default
    except ValueError:
        return False
    host, own_port = split_host(host_header)  # no port: the scheme's default (e.g. behind an https proxy)
    return parts.hostname.lower() == host and str(port) == (own_port or str(default))


def security_headers(host_header: str) -> list[tuple[bytes, bytes]]:
    """The headers every answer carries; ``connect-src`` names the page's own host and port."""
    host, port = split_host(host_header)
    authority = (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    ws = f"ws://{authority} wss://{authority}" if host else ""
    return [(b"content-security-policy", _CSP.format(ws=ws).encode("latin-1")),
            (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]


class GuardedApp:
    """ASGI wrapper: Host and Origin checks, security headers, JSON for any error it sees."""

    def __init__(self, app, settings):
        self.app, self.settings = app, settings

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        problem = self._refusal(scope, headers, host)
        if problem is not None:
            status, message = problem
            log.info("refused %s %s: %s", scope.get("method", "WS"), scope.get("path"), message)
            if scope["type"] == "websocket":
                return await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
            return await _send_json(send, status, {"error": message}, security_headers(""))
        if scope["type"] == "websocket":
            return await self.app(scope, receive, send)
        await self._http(scope, receive, send, security_headers(host))

    def _refusal(self, scope, headers: dict, host: str) -> tuple[int, str] | None:
        if not host_allowed(host, self.settings.hosts):
            return 400, "this server is not reachable under that host name (see genrescope serve --allow-host)"
        origin = headers.get("origin")
        if origin is not None and (scope["type"] == "websocket" or scope.get("method") not in SAFE_METHODS) \
                and not origin_allowed(origin, host, self.settings.allow_origins):
            return 403, "requests from other websites are refused (see genrescope serve --allow-origin)"
        return None

    async def _http(self, scope, receive, send, extra: list) -> None:
        started = False

        async def send_with_headers(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                names = {k for k, _ in extra}
                message = {**message, "headers": [h for h in message.get("headers", []) if h[0].lower() not in names]
                           + extra}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await _send_json(send, 500, {"error": "internal error (see the server log)"}, extra)


async def _send_json(send, status: int, body: dict, headers: list) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": data})
