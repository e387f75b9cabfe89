"""Frame-level descriptors in numpy/scipy: chroma, spectral shape, RMS, ZCR, HPSS, tempo.

These are the building blocks of :mod:`genrescope.features.gtzan_table`. Each follows the
librosa function of the same name (the tests hold them to librosa 0.11), but takes the
spectrogram it needs as an argument, so that one STFT per file feeds all of them.
Arrays follow librosa's orientation: spectrograms are (n_bins, n_frames).

The complex STFT here shares its framing, padding and window with
:func:`genrescope.features.spectrogram.stft_magnitude` (it calls the same private helpers), so
``abs(stft(y, ...))`` is that function's output; only the phase is added.
"""
from __future__ import annotations

import numpy as np
import scipy.fft
import scipy.ndimage

from genrescope.features import spectrogram as F
_TINY32 = np.finfo(np.float32).tiny


# ---------------------------------------------------------------- STFT and its inverse
def stft(y: np.ndarray, *, n_fft: int = 2048, hop_length: int = 512, center: bool = True,
         pad_mode: str = "constant") -> np.ndarray:
    """Complex STFT with the framing of :func:`genrescope.features.spectrogram.stft_magnitude`.

    Returns
    -------
    np.ndarray
        complex64, shape (1 + n_fft // 2, n_frames).
    """
    frames = F._frames(F._pad(F._as_signal(y), n_fft, center, pad_mode), n_fft, hop_length)
    win = F.hann_window(n_fft)
    out = np.empty((1 + n_fft // 2, len(frames)), np.complex64)
    for i in range(0, len(frames), F._CHUNK_FRAMES):
        chunk = frames[i:i + F._CHUNK_FRAMES]
        out[:, i:i + len(chunk)] = np.fft.rfft(chunk * win, axis=1).T  # the FFT of features.spectrogram
    return out


def magnitude(D: np.ndarray) -> np.ndarray:
    """|D| computed exactly as :func:`genrescope.features.spectrogram.stft_magnitude` does, float32."""
    return np.sqrt(D.real * D.real + D.imag * D.imag)


def _overlap_add(frames: np.ndarray, hop_length: int) -> np.ndarray:
    """Sum (n_frames, n_fft) frames placed every ``hop_length`` samples."""
    n, n_fft = frames.shape
    out = np.zeros(n_fft + hop_length * (n - 1), frames.dtype)
    if n_fft % hop_length == 0:  # add whole hop-sized columns at once
        for k in range(n_fft // hop_length):
            start = k * hop_length
            out[start:start + n * hop_length] += frames[:, start:start + hop_length].ravel()
    else:
        for t in range(n):
            out[t * hop_length:t * hop_length + n_fft] += frames[t]
    return out


def istft(D: np.ndarray, *, hop_length: int = 512, center: bool = True) -> np.ndarray:
    """Inverse of :func:`stft` by windowed overlap-add (librosa's ``istft`` without ``length``).

    The output has ``hop_length * (n_frames - 1)`` samples when ``center``: the tail of
    the original signal past the last frame centre is not recovered (older librosa's
    ``effects.hpss`` then zero-padded to the input length); pad or trim it yourself.

    Returns
    -------
    np.ndarray
        float32, shape (n,).
    """
    n_fft = 2 * (D.shape[0] - 1)
    n = D.shape[1]
    if n == 0:
        return np.zeros(0, np.float32)
    win = F.hann_window(n_fft)
    frames = scipy.fft.irfft(D.T, n=n_fft, axis=1).astype(np.float32, copy=False) * win  # (T, n_fft)
    y = _overlap_add(frames, hop_length)
    wss = _overlap_add(np.broadcast_to(win * win, (n, n_fft)), hop_length)
    ok = wss > _TINY32
    y[ok] /= wss[ok]
    if center:
        y = y[n_fft // 2: len(y) - n_fft // 2]
    return y


# ---------------------------------------------------------------- HPSS
def median_filter_1d(x: np.ndarray, size: int, *, axis: int) -> np.ndarray:
    """Running median of ``size`` along one axis, edges mirrored (scipy's ``mode="reflect"``).

    Equal to ``scipy.ndimage.median_filter`` with a 1-D footprint, about 10x faster:
    each line is mirror-padded and all lines run as one 1-D filter, which scipy
    computes with a sliding-window algorithm instead of a generic rank filter.
    """
    x = np.moveaxis(np.asarray(x), axis, -1)
    left, right = size // 2, size - 1 - size // 2
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(left, right)], mode="symmetric")
    flat = scipy.ndimage.median_filter(padded.reshape(-1), size=size, mode="reflect")
    out = flat.reshape(padded.shape)[..., left:left + x.shape[-1]]
    return np.moveaxis(out, -1, axis)


def softmask(X: np.ndarray, X_ref: np.ndarray, *, power: float = 2.0) -> np.ndarray:
    """``X**p / (X**p + X_ref**p)``, 0.5 where both are zero (librosa ``util.softmask``)."""
    Z = np.maximum(X, X_ref)
    bad = Z < _TINY32
    Z = np.where(bad, np.float32(1.0), Z)
    mask = (X / Z) ** power
    ref = (X_ref / Z) ** power
    mask = mask / np.where(bad, np.float32(1.0), mask + ref)
    mask[bad] = 0.5
    return mask


def hpss(D: np.ndarray, *, kernel_size: int = 31, power: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic/percussive split of a complex STFT by median filtering (Fitzgerald 2010).

    Same as ``librosa.decompose.hpss(D)`` with ``margin=1``: a horizontal median (over
    time) keeps steady tones, a vertical one (over frequency) keeps clicks, and soft
    masks share each bin between the two.

    Returns
    -------
    (np.ndarray, np.ndarray)
        Harmonic and percussive complex STFTs, each shaped like ``D``.
    """
    S = magnitude(D)
    harm = median_filter_1d(S, kernel_size, axis=1)
    perc = median_filter_1d(S, kernel_size, axis=0)
    return D * softmask(harm, perc, power=power), D * softmask(perc, harm, power=power)


# ---------------------------------------------------------------- chroma
def _localmax(x: np.ndarray) -> np.ndarray:
    """librosa ``util.localmax`` along axis 0: x[i] > x[i-1] and x[i] >= x[i+1]."""
    out = np.zeros(x.shape, bool)
    out[1:-1] = (x[1:-1] > x[:-2]) & (x[1:-1] >= x[2:])
    out[-1] = x[-1] > x[-2]
    return out


def estimate_tuning(S: np.ndarray, *, sr: int, n_fft: int, resolution: float = 0.01, bins_per_octave: int = 12,
                    fmin: float = 150.0, fmax: float = 4000.0, threshold: float = 0.1) -> float:
    """Tuning offset in fractions of a bin, from spectral peaks (librosa ``estimate_tuning``).

    ``S`` is a (1 + n_fft // 2, n_frames) spectrogram; the peaks between ``fmin`` and
    ``fmax`` above ``threshold`` times each frame's maximum are located by parabolic
    interpolation, and the most common deviation from the 440 Hz grid wins.
    """
    S = np.abs(S)
    if S.shape[0] < 3 or S.shape[1] == 0:
        return 0.0
    freqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    in_band = (fmin <= freqs) & (freqs < min(fmax, sr / 2))
    peaks = _localmax(S * (S > threshold * S.max(axis=0, keepdims=True))) & in_band[:, None]
    f_idx, t_idx = np.nonzero(peaks)
    if len(f_idx) == 0:
        return 0.0
    lo, mid, hi = S[f_idx - 1, t_idx], S[f_idx, t_idx], S[f_idx + 1, t_idx]
    a = hi + lo - 2 * mid
    b = (hi - lo) / 2
    shift = np.where(np.abs(b) >= np.abs(a), np.float32(0), -b / np.where(a == 0, np.float32(1), a))
    pitch = ((f_idx + shift) * (float(sr) / n_fft)).astype(np.float32)
    mag = mid + 0.5 * b * shift  # peak height of the fitted parabola
    keep = (mag >= np.median(mag)) & (pitch > 0)
    if not keep.any():
        return 0.0
    residual = np.mod(bins_per_octave * np.log2(pitch[keep] / np.float32(440.0 / 16)), 1.0)
    residual[residual >= 0.5] -= 1.0
    edges = np.linspace(-0.5, 0.5, int(np.ceil(1.0 / resolution)) + 1)
    counts, edges = np.histogram(residual, edges)
    return float(edges[np.argmax(counts)])


def chroma_filterbank(*, sr: int, n_fft: int, n_chroma: int = 12, tuning: float = 0.0, ctroct: float = 5.0,
                      octwidth: float | None = 2.0, base_c: bool = True) -> np.ndarray:
    """Dan Ellis's chroma filters (librosa ``filters.chroma``), shape (n_chroma, 1 + n_fft // 2), float32.

    Each FFT bin spreads a Gaussian over the pitch classes near its own, columns are
    L2-normalised, and a Gaussian over octaves centred at ``ctroct`` weights them.
    """
    freqs = np.linspace(0, sr, n_fft, endpoint=False)[1:]
    a440 = 440.0 * 2.0 ** (tuning / n_chroma)
    frqbins = n_chroma * np.log2(freqs / (a440 / 16))
    frqbins = np.concatenate(([frqbins[0] - 1.5 * n_chroma], frqbins))
    binwidth = np.concatenate((np.maximum(frqbins[1:] - frqbins[:-1], 1.0), [1]))
    D = np.subtract.outer(frqbins, np.arange(n_chroma, dtype=float)).T
    half = np.round(float(n_chroma) / 2)
    D = np.remainder(D + half + 10 * n_chroma, n_chroma) - half
    wts = np.exp(-0.5 * (2 * D / binwidth[None, :]) ** 2)
    norms = np.linalg.norm(wts, axis=0, keepdims=True)
    wts /= np.where(norms < np.finfo(float).tiny, 1.0, norms)
    if octwidth is not None:
        wts *= np.exp(-0.5 * ((frqbins / n_chroma - ctroct) / octwidth) ** 2)[None, :]
    if base_c:
        wts = np.roll(wts, -3 * (n_chroma // 12), axis=0)
    return np.ascontiguousarray(wts[:, :1 + n_fft // 2], dtype=np.float32)


def chroma_stft(S_power: np.ndarray, *, sr: int, n_fft: int, tuning: float | None = None,
                n_chroma: int = 12) -> np.ndarray:
    """Chromagram of a power spectrogram, each frame scaled to max 1 (librosa ``chroma_stft``).

    Returns
    -------
    np.ndarray
        float32, shape (n_chroma, n_frames).
    """
    if tuning is None:
        tuning = estimate_tuning(S_power, sr=sr, n_fft=n_fft, bins_per_octave=n_chroma)
    raw = chroma_filterbank(sr=sr, n_fft=n_fft, n_chroma=n_chroma, tuning=tuning) @ S_power
    peak = np.abs(raw).max(axis=0, keepdims=True) if raw.shape[1] else np.ones((1, 0), np.float32)
    return raw / np.where(peak < _TINY32, np.float32(1.0), peak)


# ---------------------------------------------------------------- spectral shape
def _l1_columns(S: np.ndarray) -> np.ndarray:
    total = S.sum(axis=0, dtype=np.float64, keepdims=True)
    return S / np.where(total < np.finfo(np.float32).tiny, 1.0, total)


def spectral_centroid(S: np.ndarray, *, sr: int, n_fft: int) -> np.ndarray:
    """Centre of mass of each magnitude frame in Hz, shape (n_frames,), float64."""
    freqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    return freqs @ _l1_columns(S)


def spectral_bandwidth(S: np.ndarray, *, sr: int, n_fft: int, centroid: np.ndarray | None = None,
                       p: float = 2.0) -> np.ndarray:
    """p-th order spread around the centroid in Hz, shape (n_frames,), float64."""
    freqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    if centroid is None:
        centroid = spectral_centroid(S, sr=sr, n_fft=n_fft)
    dev = np.abs(freqs[:, None] - centroid[None, :]) ** p  # (F, T)
    return np.einsum("ft,ft->t", _l1_columns(S), dev) ** (1.0 / p)


def spectral_rolloff(S: np.ndarray, *, sr: int, n_fft: int, roll_percent: float = 0.85) -> np.ndarray:
    """Lowest frequency below which ``roll_percent`` of each frame's magnitude lies, (n_frames,)."""
    freqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    cum = np.cumsum(S, axis=0)  # float32 running sum, as librosa does
    reached = cum >= roll_percent * cum[-1:]
    return freqs[np.argmax(reached, axis=0)]


# ---------------------------------------------------------------- time domain
def rms(y: np.ndarray, *, frame_length: int = 2048, hop_length: int = 512, center: bool = True,
        pad_mode: str = "constant") -> np.ndarray:
    """Root-mean-square of each (unwindowed) frame, shape (n_frames,), float64."""
    frames = F._frames(F._pad(F._as_signal(y), frame_length, center, pad_mode), frame_length, hop_length)
    return np.sqrt(np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / frame_length)


def zero_crossing_rate(y: np.ndarray, *, frame_length: int = 2048, hop_length: int = 512, center: bool = True,
                       threshold: float = 1e-10) -> np.ndarray:
    """Fraction of sign changes in each frame (librosa ``zero_crossing_rate``), shape (n_frames,).

    Centring pads by repeating the edge samples; values within ``threshold`` of zero
    count as positive; the first sample of a frame is never a crossing.
    """
    y = F._as_signal(y)
    if center:
        y = np.pad(y, frame_length // 2, mode="edge")
    n = 0 if len(y) < frame_length else 1 + (len(y) - frame_length) // hop_length
    neg = y < -threshold
    cum = np.concatenate(([0], np.cumsum(neg[1:] != neg[:-1])))  # cum[k]: changes among pairs < k
    starts = np.arange(n) * hop_length
    return (cum[starts + frame_length - 1] - cum[starts]) / frame_length


# ---------------------------------------------------------------- rhythm
def onset_strength(S_db: np.ndarray, *, n_fft: int, hop_length: int, aggregate=np.median) -> np.ndarray:
    """Spectral flux of a dB mel spectrogram (librosa ``onset_strength``, lag 1), (n_frames,).

    Positive differences between consecutive frames are aggregated over bands, then
    shifted right by ``1 + n_fft // (2 * hop_length)`` frames so onsets line up with
    centred frames.
    """
    n = S_db.shape[1]
    flux = aggregate(np.maximum(0.0, S_db[:, 1:] - S_db[:, :-1]), axis=0)
    shift = 1 + n_fft // (2 * hop_length)
    return np.concatenate((np.zeros(shift, flux.dtype), flux))[:n]


def tempo(onset_env: np.ndarray, *, sr: int, hop_length: int, start_bpm: float = 120.0, std_bpm: float = 1.0,
          ac_size: float = 8.0, max_tempo: float | None = 320.0) -> float:
    """Global tempo in BPM (librosa ``feature.tempo`` / ``beat.beat_track``'s estimate).

    Windowed autocorrelations of the onset envelope (an ``ac_size``-second Hann window
    around every frame, each scaled to max 1) are averaged over time, weighted by a
    log-normal prior around ``start_bpm``, and the best lag wins. Returns 0.0 for an
    envelope without onsets. The answer is a lag on the frame grid
    (``60 * sr / hop_length / lag``), and octave or neighbour-lag errors are the usual
    way it differs from a human's tempo.
    """
    env = np.asarray(onset_env, dtype=np.float64)
    if not env.any():
        return 0.0
    n = len(env)
    win_length = int(ac_size * sr) // hop_length  # librosa's time_to_frames
    half = win_length // 2
    padded = np.pad(env, (half, half), mode="linear_ramp", end_values=(0, 0))
    frames = np.lib.stride_tricks.sliding_window_view(padded, win_length)[:n]  # (T, win)
    n_pad = scipy.fft.next_fast_len(2 * win_length - 1, real=True)
    spec = scipy.fft.rfft(frames * F.hann_window(win_length).astype(np.float64), n=n_pad, axis=1)
    ac = scipy.fft.irfft(spec.real ** 2 + spec.imag ** 2, n=n_pad, axis=1)[:, :win_length]  # (T, win)
    peak = np.abs(ac).max(axis=1, keepdims=True)
    ac /= np.where(peak < np.finfo(np.float64).tiny, 1.0, peak)
    tg = ac.mean(axis=0)
    bpms = np.full(win_length, np.inf)  # lag 0 -> inf BPM
    bpms[1:] = 60.0 * sr / (hop_length * np.arange(1.0, win_length))
    logprior = -0.5 * ((np.log2(bpms) - np.log2(start_bpm)) / std_bpm) ** 2
    if max_tempo is not None:
        logprior[:int(np.argmax(bpms < max_tempo))] = -np.inf
    return float(bpms[np.argmax(np.log1p(1e6 * tg) + logprior)])


__all__ = ["stft", "istft", "magnitude", "median_filter_1d", "softmask", "hpss", "estimate_tuning",
           "chroma_filterbank", "chroma_stft", "spectral_centroid", "spectral_bandwidth", "spectral_rolloff",
           "rms", "zero_crossing_rate", "onset_strength", "tempo"]
