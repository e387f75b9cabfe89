"""One exception family for everything a user can get wrong.

Every error names the file (or object) it is about and says what is wrong in
plain words, so the CLI can print ``str(err)`` and nothing else.
"""
from __future__ import annotations

import os


class GenrescopeError(Exception):
    """Base class of every error genrescope raises on purpose."""


class AudioError(GenrescopeError):
    """A problem with one audio file; ``path`` and ``reason`` are kept apart."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class AudioNotFoundError(AudioError):
    """The path does not exist or is not a regular file."""


class UnsupportedAudioError(AudioError):
    """The file is not audio, or in a format no installed decoder reads."""


class EmptyAudioError(AudioError):
    """The file is empty or holds zero samples."""


class CorruptAudioError(AudioError):
    """The file starts like audio but is truncated or damaged."""


class AudioTooShortError(AudioError):
    """The audio is shorter than the minimum a model needs."""


class SilentAudioWarning(UserWarning):
    """The audio decodes but is (nearly) all silence: results are meaningless."""


class DamagedAudioWarning(UserWarning):
    """The file is truncated or partly damaged; what decodes is used."""


class DatasetError(GenrescopeError):
    """A dataset tree, manifest or split list is malformed."""


class CheckpointError(GenrescopeError):
    """A checkpoint or model file is missing, corrupt or incompatible."""


def require_torch(what: str) -> None:
    """Raise a one-line GenrescopeError saying what to install when PyTorch is missing.

    ``what`` names the command or option that needs it, e.g. ``"genrescope train"``.
    """
    try:
        import torch  # noqa: F401
    except ImportError as e:
        raise GenrescopeError(f"{what} needs PyTorch, which is not installed here: "
                              "pip install 'genrescope[train]'") from e
