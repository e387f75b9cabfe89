"""Running the app under uvicorn: from the CLI, or in a background thread for tests and benches.

The listening socket is bound before uvicorn starts, so port 0 works (the OS picks a free
port) and the address printed is the one really listened on.
"""
from __future__ import annotations

import socket
import sys
import threading
import time

from genrescope.errors import GenrescopeError


def _need_web_extra():
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise GenrescopeError(f"genrescope serve needs the web extra: pip install 'genrescope[web]' ({e})") from e


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket on (host, port); port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise GenrescopeError(f"cannot listen on {host}:{port} ({e.strerror})") from e
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _server(app, log_level: str = "warning"):
    """uvicorn with the connection guards of :mod:`genrescope.serve.connections` and the
    app's settings (header deadline, connection cap)."""
    import uvicorn

    from genrescope.serve.connections import guarded_protocol

    s = app.state.settings
    config = uvicorn.Config(app, log_level=log_level, ws_max_size=2 << 20, timeout_keep_alive=5,
                            http=guarded_protocol(s.max_connections, s.header_timeout_s),
                            h11_max_incomplete_event_size=16 << 10)
    return uvicorn.Server(config)


def serve_forever(settings, *, host: str = "127.0.0.1", port: int = 8000, verbose: int = 0) -> int:
    """Serve ``settings``' app on ``host:port`` until Ctrl+C (``genrescope serve``)."""
    _need_web_extra()
    from genrescope.serve.app import create_app

    app = create_app(settings)
    sock = bind(host, port)
    app.state.runner.prestart()  # the job workers load their models while uvicorn starts
    url = url_of(sock)
    print(f"genrescope serve: open {url}/ in a browser (API: {url}/docs); Ctrl+C stops it", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print("genrescope serve: listening beyond this machine; browsers allow the microphone only on "
              "localhost or https; requests must name this server by an IP address or a name given to "
              "--allow-host", file=sys.stderr, flush=True)
    level = {0: "warning", 1: "info"}.get(verbose, "debug")
    _server(app, level).run(sockets=[sock])
    return 0


class BackgroundServer:
    """The app served on 127.0.0.1 from a thread: ``with BackgroundServer(settings) as url: ...``."""

    def __init__(self, settings=None, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"):
        _need_web_extra()
        from genrescope.serve.app import create_app

        self.app = create_app(settings)
        self.sock = bind(host, port)
        self.url = url_of(self.sock)
        self.server = _server(self.app, log_level)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise GenrescopeError("the background server did not start")
            time.sleep(0.05)
        return self.url

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()
