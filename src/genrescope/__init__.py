"""genrescope: music genre recognition, and how the belief moves through a song.

    import genrescope
    model = genrescope.load_model()          # the default model; or a name, a file, a model folder
    result = model.predict("song.mp3")       # .genres, .timeline, .tags, .warnings, .to_dict()

Importing genrescope is light: numpy, ONNX Runtime and the models load only when
:func:`load_model` is called.
"""
from __future__ import annotations

from genrescope.errors import GenrescopeError  # light: no heavy imports
from genrescope.version import __version__

__all__ = ["__version__", "GenrescopeError", "Model", "Result", "load_model"]


def __getattr__(name: str):
    # the API module imports numpy; it is loaded on first use, not with the package
    if name in ("load_model", "Model", "Result"):
        from genrescope import api

        return getattr(api, name)
    raise AttributeError(f"module 'genrescope' has no attribute {name!r}")
