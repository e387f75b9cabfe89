"""Fallback decoder on PyAV (FFmpeg), installed with the ``av`` extra.

Used for what libsndfile cannot read (m4a/AAC, wma, webm) and for damaged files:
packets are decoded one by one, and a packet that fails to decode is skipped and
counted instead of ending the file.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import numpy as np

from genrescope.audio import limits
from genrescope.audio.info import AudioInfo
from genrescope.errors import CorruptAudioError, EmptyAudioError, UnsupportedAudioError

log = logging.getLogger(__name__)


def _open(path: Path):
    import av

    try:
        container = av.open(str(path))
    except (av.error.InvalidDataError, av.error.FFmpegError, UnicodeDecodeError) as e:
        from genrescope.audio.files import not_audio_reason

        raise UnsupportedAudioError(path, not_audio_reason(path, True)) from e
    if not container.streams.audio:
        container.close()
        raise UnsupportedAudioError(path, "has no audio stream")
    ctx = container.streams.audio[0].codec_context
    try:
        limits.check_stream(path, int(ctx.sample_rate or 0), int(ctx.channels or 0))
    except limits.AudioLimitError:
        container.close()
        raise
    return container


def info(path: Path):
    """Header facts through FFmpeg, as an :class:`genrescope.audio.decode.AudioInfo`."""

    with _open(path) as c:
        s = c.streams.audio[0]
        sr = int(s.codec_context.sample_rate or s.rate or 0)
        if s.duration is not None and s.time_base is not None:
            seconds = float(s.duration * s.time_base)
        elif c.duration is not None:
            seconds = c.duration / 1_000_000
        else:
            seconds = 0.0
        frames = int(round(seconds * sr))
        if frames <= 0 or sr <= 0:
            raise EmptyAudioError(path, "holds no audio samples (zero length)")
        return AudioInfo(str(path), sr, int(s.codec_context.channels), frames, c.format.name.upper(),
                         s.codec_context.name.upper())


def iter_blocks(path: Path, offset: float | None, duration: float | None, mono: bool,
                notes=None) -> Iterator[tuple[np.ndarray, int]]:
    """Yield ``(block, sr)`` float32 blocks, (n,) if mono else (n, channels).

    ``notes`` (a :class:`genrescope.audio.guard.DecodeNotes`) hears about skipped packets.
    """
    import av

    with _open(path) as c:
        stream = c.streams.audio[0]
        sr = int(stream.codec_context.sample_rate)
        skip = int(round((offset or 0.0) * sr))
        remaining = None if duration is None else int(round(duration * sr))
        bad = got = 0
        for packet in c.demux(stream):
            try:
                frames = packet.decode()
            except (av.error.InvalidDataError, av.error.FFmpegError, ValueError):
                bad += 1
                continue
            for frame in frames:
                a = frame.to_ndarray()  # planar: (channels, n); packed: (1, n * channels)
                if not frame.format.is_planar:
                    a = a.reshape(-1, len(frame.layout.channels)).T
                a = a.astype(np.float32)
                if frame.format.name.startswith("s16"):
                    a /= 32768.0
                elif frame.format.name.startswith("s32"):
                    a /= 2147483648.0
                block = a.T  # (n, channels)
                if skip:
                    drop = min(skip, len(block))
                    block, skip = block[drop:], skip - drop
                if remaining is not None:
                    block = block[:remaining]
                    remaining -= len(block)
                if len(block):
                    got += len(block)
                    yield (block.mean(axis=1, dtype=np.float32) if mono else block), sr
                if remaining is not None and remaining <= 0:
                    break
            if remaining is not None and remaining <= 0:
                break
        if bad and got:
            msg = f"damaged: skipped {bad} undecodable packet(s)"
            notes.warn(msg) if notes is not None else log.warning("%s: %s", path, msg)
        if got == 0:
            raise CorruptAudioError(path, "no audio could be decoded (truncated or damaged)")
