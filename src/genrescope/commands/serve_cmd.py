"""``genrescope serve``: the web app and its HTTP API."""
from __future__ import annotations

import dataclasses

from genrescope.commands._args import add_backend, add_runtime

NAME = "serve"

#: flag -> Settings field, for the flags whose default is the Settings' own
_LIMITS = (("--max-upload-mb", "max_upload_mb", float, "largest upload in MiB"),
           ("--max-duration", "max_duration_s", float, "longest audio in seconds"),
           ("--max-jobs", "max_jobs", int, "files analysed at once"),
           ("--max-queue", "max_queue", int, "uploads that may wait for a free worker before the server answers 429"),
           ("--threads", "threads", int, "threads per model call"),
           ("--max-live", "max_live", int, "microphone streams at once"),
           ("--live-seconds", "live_seconds", float, "seconds of microphone audio each live estimate looks at"),
           ("--live-interval", "live_interval_s", float, "seconds between live estimates"),
           ("--max-connections", "max_connections", int, "open HTTP connections; idle ones make room for new ones"),
           ("--job-timeout", "job_timeout_s", float, "seconds one analysis may run"),
           ("--max-models", "max_models", int, "models kept loaded at once"),
           ("--max-job-mb", "max_job_mb", float,
            "memory one analysis may use in MiB: estimated from the header, measured in its worker process while "
            "it runs"))
#: defaults that depend on the machine, as the help says them
_COMPUTED = {"max_jobs": "CPU cores, at most 4", "threads": "cores / max-jobs"}


def _defaults() -> dict:
    from genrescope.serve.settings import Settings

    return {f.name: f.default for f in dataclasses.fields(Settings) if f.default is not dataclasses.MISSING}


def add_parser(sub) -> None:
    p = sub.add_parser(
        NAME, help="the web app: upload a song or use the microphone, see its genres move over time",
        description="Start a local web server with a page that analyses an uploaded file (summary, playback, the "
                    "current genre mix and a timeline of every genre) or listens to the microphone, plus the "
                    "HTTP API the page uses (documented at /docs). Needs the web extra: "
                    "pip install 'genrescope[web]'.",
        epilog="example: genrescope serve --port 8000 --model-dir runs/")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: %(default)s, this machine only; browsers allow the "
                        "microphone only on localhost or https)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s; 0 = any free port)")
    p.add_argument("-m", "--model", default="default",
                   help="model the page starts with: default, a shipped name, a model folder or a file in --model-dir")
    p.add_argument("--model-dir", metavar="DIR", default=None,
                   help="also offer every ONNX export (with --runtime torch: checkpoint) found under DIR")
    add_runtime(p)
    add_backend(p)
    defaults = _defaults()
    g = p.add_argument_group("limits")
    for flag, key, kind, text in _LIMITS:
        shown = _COMPUTED.get(key, f"{defaults.get(key)!s}")
        g.add_argument(flag, dest=key, type=kind, default=None, help=f"{text} (default: {shown})")
    g.add_argument("--tmp-dir", metavar="DIR", default=None,
                   help="where the private upload folder is made (default: the system's temporary folder)")
    g = p.add_argument_group("browser origins")
    g.add_argument("--allow-host", metavar="NAME", action="append", default=None,
                   help="a host name clients may use for this server (repeatable; default: localhost, "
                        "the --host address and any IP address)")
    g.add_argument("--allow-origin", metavar="ORIGIN", action="append", default=None,
                   help="another website (https://example.org, or *) whose pages may POST and open the "
                        "live socket (repeatable; default: only the server's own pages)")


def settings_from_args(args):
    """The server's Settings from the parsed flags; a flag not given keeps the Settings' default."""
    from pathlib import Path

    from genrescope.serve.settings import Settings

    kw = {key: getattr(args, key) for _, key, _, _ in _LIMITS if getattr(args, key, None) is not None}
    if kw.get("max_jobs") == 0:  # 0: as many as the default
        del kw["max_jobs"]
    if args.allow_host:
        kw["allowed_hosts"] = tuple(args.allow_host)
    if args.allow_origin:
        kw["allow_origins"] = tuple(args.allow_origin)
    return Settings(model=args.model, model_dir=Path(args.model_dir) if args.model_dir else None,
                    runtime=args.runtime, backend=args.backend, precision=args.precision, host=args.host,
                    tmp_dir=Path(args.tmp_dir) if args.tmp_dir else None, **kw)


def run(args) -> int:
    """Start the server and print its address (blocks until Ctrl+C)."""
    from genrescope.serve.server import serve_forever

    return serve_forever(settings_from_args(args), host=args.host, port=args.port, verbose=args.verbose)
