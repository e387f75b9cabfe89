"""Decoding audio files into float32 waveforms.

libsndfile (through soundfile) decodes wav, au, aiff, flac, ogg/vorbis, opus and mp3;
soxr resamples. When the optional ``av`` extra is installed, PyAV is a fallback for what
libsndfile cannot read (m4a/AAC, damaged mp3), decoded packet by packet so one bad packet
does not lose the whole file.

Every failure is a :class:`~genrescope.errors.AudioError` that names the file and the
problem. Long files are read in blocks: :func:`iter_audio_blocks` keeps memory bounded
whatever the file's length, rate and channel count, since each read is sized by what it
becomes after downmix and resampling (:func:`frames_per_read`); soxr's stream carries its
filter state from block to block, so the block size never changes the samples.
:func:`load_audio` is the concatenation of those blocks, so
both follow one policy (:mod:`genrescope.audio.guard`): NaN or infinity is an error, a
truncated or damaged file is used as far as it decodes (with a warning), silence warns.
"""
from __future__ import annotations

import logging
import os
from contextlib import nullcontext
from pathlib import Path
from typing import Iterator

import numpy as np

from genrescope.audio import limits
from genrescope.audio.files import AUDIO_EXTENSIONS, find_audio_files, is_audio_path
from genrescope.audio.guard import (MIN_SALVAGE_S, SILENCE_PEAK, DecodeNotes, check_finite, quiet_stderr,
                                    warn_if_silent)
from genrescope.audio.info import AudioInfo
from genrescope.errors import (
    AudioError,
    AudioNotFoundError,
    AudioTooShortError,
    CorruptAudioError,
    EmptyAudioError,
    UnsupportedAudioError,
)

log = logging.getLogger(__name__)

__all__ = ["AUDIO_EXTENSIONS", "SILENCE_PEAK", "MIN_SALVAGE_S", "audio_info", "check_duration",
           "find_audio_files", "is_audio_path", "iter_audio_blocks", "load_audio"]

#: Frames decoded per read when streaming (about 3 s at 44.1 kHz), at most.
_READ_FRAMES = 131072
#: Values (frames x channels) a block holds at most after downmix and resampling: a read is
#: sized by what it becomes, so a low native rate upsampled to the target cannot make a huge block.
OUT_BLOCK = 131072
#: Values (frames x channels) one read decodes at most, whatever the rate and channel count.
NATIVE_BLOCK = 1 << 20
#: Frames per read once a read has failed, so that little of what precedes the damage is lost.
_CAREFUL_FRAMES = 4096
#: Fewest frames per read, so an extreme resampling ratio cannot make reads one sample long.
_MIN_FRAMES = 256


def frames_per_read(native_sr: int, sr: int | None, channels: int, mono: bool) -> int:
    """Native frames to decode per block so that the block is bounded on both sides.

    Parameters
    ----------
    native_sr : int
        The file's sample rate.
    sr : int or None
        The target rate (None: the file's own).
    channels : int
        The file's channel count.
    mono : bool
        Whether the channels are averaged to one.

    Returns
    -------
    int
        At most :data:`_READ_FRAMES`; ``frames x channels`` at most :data:`NATIVE_BLOCK`, and
        the resampled block (frames x sr / native_sr x output channels) at most :data:`OUT_BLOCK`
        values. 131072 for a mono decode of any file at 22.05 kHz or more, as before blocks
        were sized by their output.
    """
    ratio = 1.0 if sr is None else sr / native_sr
    by_output = int(OUT_BLOCK / (max(ratio, 1e-9) * (1 if mono else channels)))
    return max(_MIN_FRAMES, min(_READ_FRAMES, NATIVE_BLOCK // max(1, channels), by_output))


def _check_file(path: Path) -> None:
    if not path.exists():
        raise AudioNotFoundError(path, "file not found")
    if path.is_dir():
        raise AudioNotFoundError(path, "is a directory, not an audio file")
    if not path.is_file():
        raise AudioNotFoundError(path, "is not a regular file")
    try:
        size = path.stat().st_size
    except OSError as e:  # permission and the like
        raise AudioNotFoundError(path, f"cannot be read ({e.strerror})") from e
    if size == 0:
        raise EmptyAudioError(path, "file is empty (0 bytes)")
    if not os.access(path, os.R_OK):
        raise AudioNotFoundError(path, "permission denied")


def _classify_sf_error(path: Path, err: Exception) -> AudioError:
    msg = str(err)
    low = msg.lower()
    if "format not recognised" in low or "unknown format" in low or "not supported" in low \
            or "unimplemented format" in low or "not a wav" in low \
            or "does not exist or is not a regular file" in low:
        from genrescope.audio.files import not_audio_reason

        return UnsupportedAudioError(path, not_audio_reason(path, _have_av()))
    return CorruptAudioError(path, f"cannot be decoded, the file looks truncated or damaged ({msg.strip()})")


def _have_av() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


#: Magic bytes of formats that libsndfile would otherwise read as headerless raw audio.
_MAGIC = {".au": (b".snd", b"dns."), ".snd": (b".snd", b"dns.")}


def _open_sf(path: Path, notes: DecodeNotes | None = None):
    import soundfile as sf

    magic = _MAGIC.get(path.suffix.lower())
    if magic is not None:
        with open(path, "rb") as fh:
            head = fh.read(4)
        if head not in magic:  # no Sun/NeXT header: libsndfile would decode any bytes as 8 kHz mu-law
            raise UnsupportedAudioError(path, f"not a supported audio file ({path.suffix} without a Sun/NeXT header)")
    try:
        with quiet_stderr(notes):
            return limits.checked(path, sf.SoundFile(str(path)))  # absurd rates and channel counts
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        raise _classify_sf_error(path, e) from e


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Read the header of an audio file.

    Raises
    ------
    AudioError
        Missing, empty, unsupported or unreadable file.
    """
    p = Path(path)
    _check_file(p)
    try:
        f = _open_sf(p)
    except UnsupportedAudioError:
        if _have_av():
            from genrescope.audio import pyav as _av
            return _av.info(p)
        raise
    with f:
        info = AudioInfo(str(p), int(f.samplerate), int(f.channels), int(f.frames), f.format, f.subtype)
    if info.frames <= 0:
        raise _zero_length_error(p)
    return info


def _to_mono(block: np.ndarray) -> np.ndarray:
    # block: (n, channels) -> (n,)
    channels = block.shape[1]
    if channels == 1:
        return block[:, 0]
    # column by column: for stereo bit-identical to block.mean(axis=1, dtype=float32) (halving
    # is exact) and ~40x faster, for 8 channels ~6x: numpy's reduction over a short axis costs
    # as much as decoding the block
    mono = block[:, 0] + block[:, 1]
    for c in range(2, channels):
        mono += block[:, c]
    mono *= np.float32(1 / channels)
    return mono


def _iter_native_blocks(p: Path, offset: float | None, duration: float | None, mono: bool,
                        notes: DecodeNotes, sr_out: int | None) -> Iterator[tuple[np.ndarray, int]]:
    """Yield ``(block, native_sr)`` with block shaped (n,) if mono else (n, channels), each
    :func:`frames_per_read` long at most for the target rate ``sr_out``.

    libsndfile first; PyAV for what libsndfile cannot open, and to carry on past a frame
    that libsndfile cannot decode.
    """
    import soundfile as sf

    try:
        f = _open_sf(p, notes)
    except UnsupportedAudioError:
        if not _have_av():
            raise
        yield from _av_blocks(p, offset, duration, mono, notes, sr_out)
        return
    with f:
        sr = int(f.samplerate)
        if f.frames <= 0:
            raise _zero_length_error(p)
        talk = (lambda: quiet_stderr(notes)) if f.format == "MP3" else nullcontext  # libmpg123 prints
        expected = _declared_frames(p, f)
        start = int(round((offset or 0.0) * sr))
        if start >= f.frames:
            raise AudioTooShortError(p, f"offset {offset:.2f} s is past the end ({f.frames / sr:.2f} s)")
        if start:
            try:
                with talk():
                    f.seek(start)
            except (sf.LibsndfileError, RuntimeError) as e:
                raise CorruptAudioError(p, f"cannot seek to {offset:.2f} s ({e})") from e
        remaining = None if duration is None else int(round(duration * sr))
        per_read = frames_per_read(sr, sr_out, int(f.channels), mono)
        got, failure = 0, None
        while remaining is None or remaining > 0:
            n = per_read if remaining is None else min(per_read, remaining)
            try:
                with talk():
                    block = f.read(n, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as e:
                if per_read > _CAREFUL_FRAMES and _seek_back(f, start + got, talk):
                    per_read = _CAREFUL_FRAMES  # the failed read lost its whole block: go again in small steps
                    continue
                failure = e
                break
            if len(block) == 0:
                break
            got += len(block)
            if remaining is not None:
                remaining -= len(block)
            yield (_to_mono(block) if mono else block), sr
    if failure is not None or got == 0:
        rest = None if remaining is None else remaining / sr
        yield from _after_failure(p, failure, (start + got) / sr, rest, got / sr, sr, mono, notes, sr_out)
        return
    wanted = expected - start if remaining is None else got + remaining
    wanted = min(wanted, expected - start)
    if got < wanted - max(0.5 * sr, 0.01 * wanted):
        msg = f"truncated: the header promises {expected / sr:.2f} s but decoding stopped at {(start + got) / sr:.2f} s"
        if got < MIN_SALVAGE_S * sr:
            raise CorruptAudioError(p, msg)
        notes.warn(msg + "; the part that decodes is used")


def _seek_back(f, frame: int, talk) -> bool:
    """Seek to ``frame`` after a failed read; False when the decoder cannot."""
    import soundfile as sf

    try:
        with talk():
            f.seek(frame)
    except (sf.LibsndfileError, RuntimeError, ValueError):
        return False
    return True


def _after_failure(p: Path, err: Exception | None, at_s: float, rest_s: float | None, got_s: float, sr: int,
                   mono: bool, notes: DecodeNotes, sr_out: int | None) -> Iterator[tuple[np.ndarray, int]]:
    """libsndfile stopped at ``at_s`` (``err``, or nothing at all decoded): FFmpeg carries on if it can."""
    more = 0
    if _have_av():
        try:
            for block, av_sr in _av_blocks(p, at_s or None, rest_s, mono, DecodeNotes(p, []), sr_out):
                if av_sr != sr:
                    break
                more += len(block)
                yield block, sr
        except AudioError:
            pass
    why = f" ({str(err).strip()})" if err is not None else ""
    if got_s + more / sr < MIN_SALVAGE_S:
        if got_s == 0 and err is None:
            raise CorruptAudioError(p, "header found but no audio could be decoded (truncated?)")
        raise CorruptAudioError(p, f"cannot be decoded, the file looks truncated or damaged{why}")
    notes.warn(f"damaged: decoding failed at {at_s:.2f} s{why}; "
               + (f"FFmpeg recovered {more / sr:.2f} s more" if more else "the rest is lost"))


def _zero_length_error(p: Path) -> AudioError:
    if p.stat().st_size > 4096:  # a real header and data, yet no frames: cut before the first audio
        return CorruptAudioError(p, "no audio samples could be decoded (file truncated or damaged)")
    return EmptyAudioError(p, "holds no audio samples (zero length, or cut before the first audio)")


def _declared_frames(p: Path, f) -> int:
    """Frames the header promises; for WAV the data chunk size (libsndfile trims it to the file)."""
    frames = int(f.frames)
    if f.format not in ("WAV", "WAVEX") or not f.subtype.startswith(("PCM", "FLOAT", "DOUBLE")):
        return frames
    import struct

    bytes_per = {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4,
                 "DOUBLE": 8}.get(f.subtype)
    if bytes_per is None:
        return frames
    with open(p, "rb") as fh:
        head = fh.read(1 << 16)
    pos = 12
    while pos + 8 <= len(head):
        cid, size = head[pos:pos + 4], struct.unpack("<I", head[pos + 4:pos + 8])[0]
        if cid == b"data":
            if size in (0, 0xFFFFFFFF):  # streaming writers leave it unset
                return frames
            return max(frames, size // (bytes_per * f.channels))
        pos += 8 + size + (size & 1)
    return frames


def iter_audio_blocks(path: str | os.PathLike, sr: int | None = 22050, *, mono: bool = True,
                      offset: float | None = None, duration: float | None = None,
                      notes: list[str] | None = None, warn_silent: bool = True) -> Iterator[np.ndarray]:
    """Stream a file as float32 blocks at ``sr`` Hz, holding only one block in memory.

    Parameters
    ----------
    path : path-like
        Any supported audio file.
    sr : int or None
        Target sample rate; None keeps the file's own rate.
    mono : bool
        Average channels to one; blocks are (n,) if True, else (n, channels).
    offset, duration : float or None
        Start and length in seconds of the part to read.
    notes : list of str, optional
        Receives one line per warning (truncated, damaged, silent). None: they are issued
        as :class:`~genrescope.errors.DamagedAudioWarning` / ``SilentAudioWarning``.
    warn_silent : bool
        Warn when the peak of what was read is below -80 dBFS.

    Yields
    ------
    np.ndarray
        Consecutive float32 blocks; their concatenation equals ``load_audio(...)``.

    Raises
    ------
    AudioError
        Missing, empty, unsupported file; NaN or infinite samples; less than
        :data:`MIN_SALVAGE_S` seconds decodable.
    """
    p = Path(path)
    _check_file(p)
    report = DecodeNotes(p, notes)
    blocks = _resample_blocks(check_finite(_iter_native_blocks(p, offset, duration, mono, report, sr), p), sr, mono)
    yield from (warn_if_silent(blocks, report) if warn_silent else blocks)


def _av_blocks(p: Path, offset, duration, mono, notes: DecodeNotes, sr_out: int | None):
    """PyAV's blocks (one per codec frame) cut to :func:`frames_per_read`: FFmpeg bounds a
    frame's native size, not what it becomes once resampled."""
    from genrescope.audio import pyav as _av

    for block, native_sr in _av.iter_blocks(p, offset, duration, mono, notes):
        n = frames_per_read(native_sr, sr_out, 1 if block.ndim == 1 else block.shape[1], mono)
        for i in range(0, len(block), n):
            yield block[i:i + n], native_sr


def _resample_blocks(native: Iterator[tuple[np.ndarray, int]], sr: int | None, mono: bool) -> Iterator[np.ndarray]:
    import soxr

    stream = None
    channels = 1
    for block, native_sr in native:
        if sr is None or sr == native_sr:
            yield block
            continue
        if stream is None:
            channels = 1 if block.ndim == 1 else block.shape[1]
            stream = soxr.ResampleStream(native_sr, sr, channels, dtype="float32", quality="HQ")
        out = stream.resample_chunk(block)
        if len(out):
            yield out
    if stream is not None:
        tail = stream.resample_chunk(np.zeros((0,) if mono else (0, channels), np.float32), last=True)
        if len(tail):
            yield tail


def load_audio(path: str | os.PathLike, sr: int | None = 22050, *, mono: bool = True,
               offset: float | None = None, duration: float | None = None,
               min_duration: float | None = None, warn_silent: bool = True,
               notes: list[str] | None = None) -> np.ndarray:
    """Decode a whole file (or a part of it) into a float32 array: :func:`iter_audio_blocks`, joined.

    Parameters
    ----------
    path : path-like
        wav, au, aiff, flac, ogg (vorbis/opus), mp3; more with the ``av`` extra.
    sr : int or None
        Target sample rate (soxr "HQ" resampling); None keeps the file's rate.
    mono : bool
        Average all channels into one.
    offset, duration : float or None
        Seconds to skip, and seconds to read after that.
    min_duration : float or None
        Raise :class:`AudioTooShortError` if fewer seconds than this were decoded.
    warn_silent : bool
        Warn with :class:`SilentAudioWarning` when the peak is below -80 dBFS.
    notes : list of str, optional
        Collects the warnings instead of issuing them (see :func:`iter_audio_blocks`).

    Returns
    -------
    np.ndarray
        float32, shape (n,) if mono else (n, channels), values nominally in [-1, 1].
    """
    rate: list[int] = []

    def native_rate(blocks):  # the file's rate, for sr=None, without opening it twice
        for b, r in blocks:
            rate[:] = [r]
            yield b, r

    p = Path(path)
    _check_file(p)
    report = DecodeNotes(p, notes)
    native = native_rate(_iter_native_blocks(p, offset, duration, mono, report, sr))
    blocks = _resample_blocks(check_finite(native, p), sr, mono)
    blocks = list(warn_if_silent(blocks, report) if warn_silent else blocks)
    if not blocks:
        raise EmptyAudioError(path, "holds no audio samples (zero length)")
    y = np.concatenate(blocks, axis=0).astype(np.float32, copy=False)
    check_duration(path, len(y) / (sr or rate[0]), min_duration)
    return y


def check_duration(path: str | os.PathLike, duration_s: float, min_duration: float | None) -> None:
    """Raise :class:`AudioTooShortError` if ``duration_s`` is under ``min_duration``."""
    if min_duration is not None and duration_s + 1e-9 < min_duration:
        raise AudioTooShortError(path, f"is {duration_s:.2f} s long; at least {min_duration:.2f} s is needed")
