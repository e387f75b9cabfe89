"""What a file's header may declare before genrescope decodes it.

A header is input like any other: an 8-bit WAV declaring a rate of 1 Hz makes every block
of frames read at the file's rate a block 22050 times larger once resampled (a 1.8 KB file
cost 19 s and 800 MB), and a FLAC of 8 channels at 655 kHz holding silence costs seconds
per megabyte. Files outside these ranges are refused (:class:`AudioLimitError`) before any decoding.
"""
from __future__ import annotations

import os

from genrescope.errors import AudioError

#: Lowest and highest sample rate accepted, in Hz (telephone-grade 4 kHz up to DXD's 384 kHz).
SAMPLE_RATES = (4000, 384000)
#: Most channels accepted (7.1 surround).
MAX_CHANNELS = 8


class AudioLimitError(AudioError):
    """The header declares a sample rate or channel count genrescope does not decode. Not an
    :class:`~genrescope.errors.UnsupportedAudioError`, so no fallback decoder tries the file."""


def check_stream(path: str | os.PathLike, sr: int, channels: int) -> None:
    """Raise :class:`AudioLimitError` for a sample rate or channel count out of range.

    Parameters
    ----------
    path : path-like
        The file, for the message.
    sr : int
        The sample rate the header declares, in Hz.
    channels : int
        The channel count the header declares.
    """
    lo, hi = SAMPLE_RATES
    if not lo <= sr <= hi:
        raise AudioLimitError(path, f"declares a sample rate of {sr} Hz; genrescope reads {lo} to {hi} Hz")
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioLimitError(path, f"declares {channels} channels; genrescope reads 1 to {MAX_CHANNELS}")


def checked(path: str | os.PathLike, sound_file):
    """``sound_file`` (an open ``soundfile.SoundFile``) if its header is within range; else
    close it and raise :class:`AudioLimitError`."""
    try:
        check_stream(path, int(sound_file.samplerate), int(sound_file.channels))
    except AudioLimitError:
        sound_file.close()
        raise
    return sound_file
