"""genrescope: music genre recognition, and how the belief moves through a song."""
from __future__ import annotations

__version__ = "0.1.0"

from genrescope.errors import GenrescopeError  # noqa: E402  (light, no heavy imports)

__all__ = ["__version__", "GenrescopeError"]
