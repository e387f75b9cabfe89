"""The one feature path: STFT, mel, log-mel and MFCC as pure numpy/scipy functions.

Training, evaluation, prediction, the web app and the ONNX export all call these
functions with the :class:`~genrescope.config.FeatureConfig` stored in the model, so a
model always sees the features it was trained on. Every library default that matters
(periodic Hann window, centred frames and their padding, Slaney mel scale and area
norm, power 2, dB reference 1.0) is written out here, and the tests hold these
functions to librosa's within stated tolerances.

Arrays follow librosa's orientation: features are (n_bins, n_frames).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Iterable, Iterator

import numpy as np

from genrescope.config import FeatureConfig
from genrescope.errors import GenrescopeError

#: Feature kinds a model can declare as its input.
FEATURE_KINDS = ("log_mel", "mfcc", "stft")

#: STFT frames per power-spectrum block, and so the row count of each mel matmul. Changing
#: it changes the float32 rounding of OpenBLAS's matmul (so the features, by an ulp).
_CHUNK_FRAMES = 1024
#: Frames per FFT call inside a block: the windowed frames and their spectra then stay in
#: the L2 cache (about 1.5x faster than one FFT call per 1024 frames at n_fft=2048). Row
#: results do not depend on it.
_FFT_FRAMES = 128


# ---------------------------------------------------------------- filterbanks
def hz_to_mel(f: np.ndarray | float, *, htk: bool = False) -> np.ndarray:
    """Hz to mels, Slaney's scale (linear below 1 kHz, log above) or HTK's."""
    f = np.asanyarray(f, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + f / 700.0)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, min_log_hz) / min_log_hz) / logstep, mels)


def mel_to_hz(m: np.ndarray | float, *, htk: bool = False) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    m = np.asanyarray(m, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


@lru_cache(maxsize=16)
def mel_filterbank(*, sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None,
                   htk: bool = False, norm: str | None = "slaney") -> np.ndarray:
    """Triangular mel filters, shape (n_mels, 1 + n_fft // 2), float32 (read-only, cached).

    Same construction as ``librosa.filters.mel``: triangles between consecutive mel
    band edges over the FFT bin frequencies, scaled to unit area when norm="slaney".
    """
    fmax = sr / 2 if fmax is None else fmax
    fftfreqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin, htk=htk), hz_to_mel(fmax, htk=htk), n_mels + 2), htk=htk)
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    if norm == "slaney":
        weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    elif norm is not None:
        raise GenrescopeError(f"mel_filterbank: norm must be 'slaney' or None, got {norm!r}")
    out = weights.astype(np.float32)
    out.setflags(write=False)
    return out


def filterbank_for(cfg: FeatureConfig) -> np.ndarray:
    """The mel filterbank a config describes."""
    return mel_filterbank(sr=cfg.sr, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.mel_fmax,
                          htk=cfg.mel_htk, norm=cfg.mel_norm)


@lru_cache(maxsize=8)
def hann_window(n: int) -> np.ndarray:
    """Periodic Hann window of length n (scipy ``get_window('hann', n)``), float32."""
    w = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float32)
    w.setflags(write=False)
    return w


# ---------------------------------------------------------------- STFT
def n_frames(n_samples: int, *, n_fft: int, hop_length: int, center: bool = True) -> int:
    """Number of STFT frames librosa produces for a signal of ``n_samples``."""
    if center:
        return 1 + n_samples // hop_length
    return 0 if n_samples < n_fft else 1 + (n_samples - n_fft) // hop_length


def _pad(y: np.ndarray, n_fft: int, center: bool, pad_mode: str) -> np.ndarray:
    if not center:
        return y
    p = n_fft // 2
    if pad_mode == "reflect" and len(y) <= p:
        pad_mode = "constant"  # reflect needs more samples than the pad; librosa would fail here
    return np.pad(y, (p, p), mode=pad_mode)


def _frames(y_padded: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """Strided view of overlapping frames, shape (n_frames, n_fft)."""
    if len(y_padded) < n_fft:
        return np.zeros((0, n_fft), dtype=np.float32)
    return np.lib.stride_tricks.sliding_window_view(y_padded, n_fft)[::hop_length]


def _as_signal(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise GenrescopeError(f"expected a mono waveform of shape (n,), got shape {y.shape}")
    return y.astype(np.float32, copy=False)


def _spectra(frames: np.ndarray, power: float) -> Iterator[np.ndarray]:
    """Yield |rfft(frame * hann)| ** power in chunks, each (chunk, 1 + n_fft // 2) float32."""
    n_fft = frames.shape[1]
    win = hann_window(n_fft)
    for i in range(0, len(frames), _CHUNK_FRAMES):
        chunk = frames[i:i + _CHUNK_FRAMES]
        mag2 = np.empty((len(chunk), 1 + n_fft // 2), np.float32)
        for j in range(0, len(chunk), _FFT_FRAMES):
            # numpy's FFT: importing scipy.fft takes about 0.15 s of every process, while scipy's
            # faster transform saves 5 ms of a 4-minute song's 25 ms of log-mel (bench/predict.py)
            spec = np.fft.rfft(chunk[j:j + _FFT_FRAMES] * win, axis=1)  # (c, F) complex64
            out = mag2[j:j + _FFT_FRAMES]
            np.multiply(spec.real, spec.real, out=out)
            out += spec.imag * spec.imag
        if power == 2.0:
            yield mag2
        elif power == 1.0:
            yield np.sqrt(mag2, out=mag2)
        else:
            yield np.power(mag2, np.float32(power / 2), out=mag2)


def stft_magnitude(y: np.ndarray, *, n_fft: int = 2048, hop_length: int = 512, center: bool = True,
                   pad_mode: str = "constant", power: float = 1.0) -> np.ndarray:
    """|STFT|**power with a periodic Hann window.

    Parameters
    ----------
    y : np.ndarray
        Mono waveform, shape (n,).

    Returns
    -------
    np.ndarray
        float32, shape (1 + n_fft // 2, n_frames).
    """
    frames = _frames(_pad(_as_signal(y), n_fft, center, pad_mode), n_fft, hop_length)
    if len(frames) == 0:
        return np.zeros((1 + n_fft // 2, 0), np.float32)
    return np.concatenate(list(_spectra(frames, power)), axis=0).T


def melspectrogram(y: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Mel power spectrogram, shape (n_mels, n_frames), float32.

    The STFT is computed in chunks and projected onto the mel bands at once, so a
    long signal never holds its full linear spectrogram in memory.
    """
    frames = _frames(_pad(_as_signal(y), cfg.n_fft, cfg.center, cfg.pad_mode), cfg.n_fft, cfg.hop_length)
    fb_t = np.ascontiguousarray(filterbank_for(cfg).T)  # (F, n_mels)
    out = np.empty((len(frames), cfg.n_mels), np.float32)
    i = 0
    for spec in _spectra(frames, cfg.power):
        out[i:i + len(spec)] = spec @ fb_t
        i += len(spec)
    return out.T


def power_to_db(S: np.ndarray, *, amin: float = 1e-10, top_db: float | None = None) -> np.ndarray:
    """``10 * log10(max(S, amin))`` with reference 1.0, optionally clipped to ``max - top_db``."""
    out = 10.0 * np.log10(np.maximum(S, np.float32(amin)))
    if top_db is not None and out.size:
        out = np.maximum(out, out.max() - np.float32(top_db))
    return out.astype(np.float32, copy=False)


def compress(mel_power: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """The config's log compression of a mel power spectrogram."""
    if cfg.log == "db":
        return power_to_db(mel_power, amin=cfg.log_floor, top_db=cfg.top_db)
    return np.log10(np.float32(1.0) + np.float32(cfg.log_scale) * mel_power).astype(np.float32, copy=False)


def log_mel(y: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Log-compressed mel spectrogram, shape (n_mels, n_frames), float32."""
    return compress(melspectrogram(y, cfg), cfg)


def mfcc_from_mel(mel_power: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """MFCCs (DCT-II, orthonormal) of the dB mel spectrogram, shape (n_mfcc, n_frames)."""
    import scipy.fft  # here only: importing it takes about 0.15 s (see _spectra)

    db = power_to_db(mel_power, amin=cfg.log_floor, top_db=cfg.mfcc_top_db)
    return scipy.fft.dct(db, axis=0, type=2, norm="ortho")[: cfg.n_mfcc].astype(np.float32, copy=False)


def mfcc(y: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """MFCCs like ``librosa.feature.mfcc``, shape (n_mfcc, n_frames), float32."""
    return mfcc_from_mel(melspectrogram(y, cfg), cfg)


def compute(y: np.ndarray, cfg: FeatureConfig, kind: str = "log_mel") -> np.ndarray:
    """The feature a model declares as its input, shape (n_bins, n_frames).

    kind is one of ``"log_mel"`` (n_mels bins), ``"mfcc"`` (n_mfcc bins) or ``"stft"``
    (log-compressed STFT power, 1 + n_fft // 2 bins).
    """
    if kind == "log_mel":
        return log_mel(y, cfg)
    if kind == "mfcc":
        return mfcc(y, cfg)
    if kind == "stft":
        S = stft_magnitude(y, n_fft=cfg.n_fft, hop_length=cfg.hop_length, center=cfg.center,
                           pad_mode=cfg.pad_mode, power=cfg.power)
        return compress(S, cfg)
    raise GenrescopeError(f"unknown feature kind {kind!r}; expected one of {FEATURE_KINDS}")


def n_bins(cfg: FeatureConfig, kind: str) -> int:
    """Number of feature rows :func:`compute` returns for ``kind``."""
    return {"log_mel": cfg.n_mels, "mfcc": cfg.n_mfcc, "stft": 1 + cfg.n_fft // 2}[kind]


# ---------------------------------------------------------------- streaming
def iter_log_mel(blocks: Iterable[np.ndarray], cfg: FeatureConfig) -> Iterator[np.ndarray]:
    """Log-mel frames of a signal given as consecutive blocks, identical to :func:`log_mel`.

    Only a few seconds of signal are held at a time, so an hour-long file streamed by
    :func:`genrescope.audio.decode.iter_audio_blocks` is analysed in bounded memory.
    ``top_db`` clipping needs the whole signal and is refused here.

    Yields
    ------
    np.ndarray
        (n_mels, t) chunks whose concatenation along axis 1 equals ``log_mel(y, cfg)``.
    """
    if cfg.log == "db" and cfg.top_db is not None:
        raise GenrescopeError("iter_log_mel: top_db clipping needs the whole signal; use log_mel")
    n_fft, hop, half = cfg.n_fft, cfg.hop_length, cfg.n_fft // 2
    buf = np.zeros(0, np.float32)
    started = False
    total = 0  # samples of the real signal seen
    emitted = 0  # frames emitted
    head = np.zeros(0, np.float32)  # first samples, kept until the left pad can be built
    ctx = np.zeros(0, np.float32)  # last n_fft//2 + 1 real samples, for the right reflect pad
    for block in blocks:
        block = _as_signal(block)
        total += len(block)
        ctx = np.concatenate([ctx, block])[-(half + 1):]
        if not started:
            head = np.concatenate([head, block])
            if len(head) <= half:
                continue
            # the left pad depends on the first n_fft//2 + 1 samples only
            left = _pad(head, n_fft, cfg.center, cfg.pad_mode)[: half] if cfg.center else head[:0]
            buf = np.concatenate([left, head])
            started = True
        else:
            buf = np.concatenate([buf, block])
        n_ready = 0 if len(buf) < n_fft else 1 + (len(buf) - n_fft) // hop
        if n_ready:
            yield compress(melspectrogram_frames(buf[: (n_ready - 1) * hop + n_fft], cfg), cfg)
            emitted += n_ready
            buf = buf[n_ready * hop:]
    if total == 0:
        return
    if not started:  # the whole signal was shorter than half a window
        yield log_mel(head, cfg)
        return
    # right pad: the end of the signal, padded like the one-shot path
    want = n_frames(total, n_fft=n_fft, hop_length=hop, center=cfg.center) - emitted
    if want > 0:
        tail_src = buf
        if cfg.center:
            if cfg.pad_mode == "reflect":
                tail_src = np.concatenate([buf, ctx[-2:-half - 2:-1]])
            else:
                tail_src = np.concatenate([buf, np.zeros(half, np.float32)])
        frames = _frames(tail_src, n_fft, hop)[:want]
        yield compress(_mel_of_frames(frames, cfg), cfg)


def melspectrogram_frames(y_padded: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Mel power of an already padded signal (no centring), shape (n_mels, n_frames)."""
    return _mel_of_frames(_frames(y_padded, cfg.n_fft, cfg.hop_length), cfg)


def _mel_of_frames(frames: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    fb_t = np.ascontiguousarray(filterbank_for(cfg).T)
    if len(frames) == 0:
        return np.zeros((cfg.n_mels, 0), np.float32)
    return np.concatenate([s @ fb_t for s in _spectra(frames, cfg.power)], axis=0).T
