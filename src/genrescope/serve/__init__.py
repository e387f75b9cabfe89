"""The web app: ``genrescope serve`` and :func:`genrescope.serve.app.create_app`.

The page (``static/``) uploads a file or streams the microphone; the routes call the same
:class:`~genrescope.inference.predict.Predictor` as the CLI. Needs the ``web`` extra
(``pip install 'genrescope[web]'``). Importing this package imports no web framework;
:func:`run_serve` does, when the command runs.
"""
from __future__ import annotations


def run_serve(args) -> int:
    """``genrescope serve``: start the server and print its address (blocks until Ctrl+C)."""
    from genrescope.serve.server import serve_forever

    return serve_forever(args)
