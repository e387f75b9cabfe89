"""Decoding audio files into float32 waveforms.

libsndfile (through soundfile) decodes wav, au, aiff, flac, ogg/vorbis, opus and mp3;
soxr resamples. When the optional ``av`` extra is installed, PyAV is a fallback for what
libsndfile cannot read (m4a/AAC, damaged mp3), decoded packet by packet so one bad packet
does not lose the whole file.

Every failure is a :class:`~genrescope.errors.AudioError` that names the file and the
problem. Long files are read in blocks: :func:`iter_audio_blocks` keeps memory bounded
whatever the file's length.
"""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np

from genrescope.audio import limits
from genrescope.audio.info import AudioInfo
from genrescope.errors import (
    AudioError,
    AudioNotFoundError,
    AudioTooShortError,
    CorruptAudioError,
    EmptyAudioError,
    SilentAudioWarning,
    UnsupportedAudioError,
)

log = logging.getLogger(__name__)

#: File extensions genrescope looks for when it walks a folder.
AUDIO_EXTENSIONS = (".wav", ".au", ".snd", ".aif", ".aiff", ".flac", ".ogg", ".oga", ".opus", ".mp3",
                    ".m4a", ".aac", ".mp4", ".wma", ".webm")

#: Peak amplitude under which a whole file counts as silent (about -80 dBFS).
SILENCE_PEAK = 1e-4

#: Least audio (seconds) the FFmpeg fallback must recover from a damaged file to count as read.
_MIN_SALVAGE_S = 0.5

#: Frames decoded per read when streaming (about 3 s at 44.1 kHz).
_READ_FRAMES = 131072


def is_audio_path(path: str | os.PathLike) -> bool:
    """True when the file name has an audio extension genrescope knows."""
    return str(path).lower().endswith(AUDIO_EXTENSIONS)


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
        ext = path.suffix.lower() or "no extension"
        hint = "" if _have_av() else " (install genrescope[av] to try the FFmpeg decoder)"
        return UnsupportedAudioError(path, f"not a supported audio file ({ext}){hint}")
    return CorruptAudioError(path, f"cannot be decoded, the file looks truncated or damaged ({msg.strip()})")


def _have_av() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


#: Magic bytes of formats that libsndfile would otherwise read as headerless raw audio.
_MAGIC = {".au": (b".snd", b"dns."), ".snd": (b".snd", b"dns.")}


def _open_sf(path: Path):
    import soundfile as sf

    magic = _MAGIC.get(path.suffix.lower())
    if magic is not None:
        with open(path, "rb") as fh:
            head = fh.read(4)
        if head not in magic:  # no Sun/NeXT header: libsndfile would decode any bytes as 8 kHz mu-law
            raise UnsupportedAudioError(path, f"not a supported audio file ({path.suffix} without a Sun/NeXT header)")
    try:
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
    if block.shape[1] == 2:
        # bit-identical to block.mean(axis=1, dtype=float32) (halving is exact), ~40x faster:
        # numpy's reduction over a 2-long axis costs as much as decoding an mp3
        mono = block[:, 0] + block[:, 1]
        mono *= np.float32(0.5)
        return mono
    return block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]


def _iter_native_blocks(p: Path, offset: float | None, duration: float | None,
                        mono: bool) -> Iterator[tuple[np.ndarray, int]]:
    """Yield ``(block, native_sr)`` with block shaped (n,) if mono else (n, channels)."""
    import soundfile as sf

    try:
        f = _open_sf(p)
    except UnsupportedAudioError:
        if not _have_av():
            raise
        yield from _av_blocks(p, offset, duration, mono)
        return
    with f:
        sr = int(f.samplerate)
        if f.frames <= 0:
            raise _zero_length_error(p)
        expected = _declared_frames(p, f)
        start = int(round((offset or 0.0) * sr))
        if start >= f.frames:
            raise AudioTooShortError(p, f"offset {offset:.2f} s is past the end ({f.frames / sr:.2f} s)")
        if start:
            try:
                f.seek(start)
            except (sf.LibsndfileError, RuntimeError) as e:
                raise CorruptAudioError(p, f"cannot seek to {offset:.2f} s ({e})") from e
        remaining = None if duration is None else int(round(duration * sr))
        got = 0
        while remaining is None or remaining > 0:
            n = _READ_FRAMES if remaining is None else min(_READ_FRAMES, remaining)
            try:
                block = f.read(n, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as e:
                raise CorruptAudioError(p, f"decoding failed after {got / sr:.2f} s ({e})") from e
            if len(block) == 0:
                break
            got += len(block)
            if remaining is not None:
                remaining -= len(block)
            yield (_to_mono(block) if mono else block), sr
        if got == 0:
            raise CorruptAudioError(p, "header found but no audio could be decoded (truncated?)")
        wanted = expected - start if remaining is None else got + remaining
        wanted = min(wanted, expected - start)
        if got < wanted - max(0.5 * sr, 0.01 * wanted):
            raise CorruptAudioError(p, f"truncated: the header promises {expected / sr:.2f} s but decoding "
                                       f"stopped at {(start + got) / sr:.2f} s")


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
                      offset: float | None = None, duration: float | None = None) -> Iterator[np.ndarray]:
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

    Yields
    ------
    np.ndarray
        Consecutive float32 blocks; their concatenation equals ``load_audio(...)``.
    """
    p = Path(path)
    _check_file(p)
    yield from _resample_blocks(_iter_native_blocks(p, offset, duration, mono), sr, mono)


def _av_blocks(p: Path, offset, duration, mono):
    from genrescope.audio import pyav as _av
    return _av.iter_blocks(p, offset, duration, mono)


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
               min_duration: float | None = None, warn_silent: bool = True) -> np.ndarray:
    """Decode a whole file (or a part of it) into a float32 array.

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

    Returns
    -------
    np.ndarray
        float32, shape (n,) if mono else (n, channels), values nominally in [-1, 1].
    """
    try:
        blocks = list(iter_audio_blocks(path, sr, mono=mono, offset=offset, duration=duration))
    except CorruptAudioError as err:
        if not _have_av():
            raise
        log.warning("%s; retrying with the FFmpeg decoder", err)
        try:
            blocks = list(_resample_blocks(_av_blocks(Path(path), offset, duration, mono), sr, mono))
        except AudioError:
            raise err from None  # libsndfile's diagnosis is the more precise one
        got_s = sum(len(b) for b in blocks) / (sr or audio_info(path).sr)
        if got_s < _MIN_SALVAGE_S:  # a few stray samples are not a recovered file
            raise err from None
        log.warning("%s: damaged file; FFmpeg recovered %.2f s of audio", path, got_s)
    if not blocks:
        raise EmptyAudioError(path, "holds no audio samples (zero length)")
    y = np.concatenate(blocks, axis=0).astype(np.float32, copy=False)
    # min and max propagate NaN and infinity, so they check finiteness and give the peak
    # in two passes without the temporaries of isfinite(y) and abs(y)
    lo, hi = (float(y.min()), float(y.max())) if y.size else (0.0, 0.0)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise CorruptAudioError(path, "decoded samples contain NaN or infinity")
    rate = sr if sr is not None else audio_info(path).sr
    check_duration(path, len(y) / rate, min_duration)
    if warn_silent and (y.size == 0 or max(-lo, hi) < SILENCE_PEAK):
        warnings.warn(f"{path}: audio is silent (peak below -80 dBFS); genre predictions are meaningless",
                      SilentAudioWarning, stacklevel=2)
    return y


def check_duration(path: str | os.PathLike, duration_s: float, min_duration: float | None) -> None:
    """Raise :class:`AudioTooShortError` if ``duration_s`` is under ``min_duration``."""
    if min_duration is not None and duration_s + 1e-9 < min_duration:
        raise AudioTooShortError(path, f"is {duration_s:.2f} s long; at least {min_duration:.2f} s is needed")


def find_audio_files(paths: list[str | os.PathLike]) -> list[Path]:
    """Expand files, folders (recursively) and glob patterns into a sorted list of audio files.

    Paths that name a file are kept whatever their extension, so that a bad file
    given by name is reported rather than silently skipped.
    """
    import glob

    out: list[Path] = []
    for item in paths:
        s = str(item)
        p = Path(s)
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if q.is_file() and is_audio_path(q)))
        elif any(ch in s for ch in "*?[") and not p.exists():
            out.extend(sorted(Path(m) for m in glob.glob(s, recursive=True) if Path(m).is_file()))
        else:
            out.append(p)
    seen: set[Path] = set()
    uniq = []
    for p in out:
        if p not in seen:
            seen.add(p)
            uniq.append(p)
    return uniq
