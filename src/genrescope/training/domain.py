"""Waveform augmentations aimed at the gap between GTZAN and today's music files.

GTZAN's excerpts are 2000-era 22 kHz mono recordings, often from radio and CD rips, some of
them band-limited to 8 kHz; songs people predict today are loud, compressed masters in
mp3 / AAC. These transforms move a clean excerpt along the axes that differ: loudness and
limiting, spectral tilt (EQ), band limits and lossy-codec artefacts. Every random parameter is
drawn first (:func:`draw`), from a seeded generator, and applied in a separate pure step
(:func:`apply`), so a run is reproducible and a draw can be logged.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

#: Named recipes: the ranges each parameter is drawn from.
RECIPES = {
    # a modern loud master: up to +12 dB into a soft limiter, brighter or darker EQ, mp3
    "loud": {"gain_db": (3.0, 12.0), "drive": (1.0, 4.0), "tilt_db_per_oct": (-2.0, 2.0), "lowpass_hz": None,
             "mp3_level": (0.3, 0.9)},
    # a band-limited, quiet, dull source (old radio, 16 kHz rips), mp3
    "dull": {"gain_db": (-12.0, 0.0), "drive": None, "tilt_db_per_oct": (-3.0, 1.0), "lowpass_hz": (3500.0, 7000.0),
             "mp3_level": (0.5, 1.0)},
}


@dataclass(frozen=True)
class DomainParams:
    """One draw of a recipe; None switches a stage off."""

    gain_db: float
    drive: float | None
    tilt_db_per_oct: float
    lowpass_hz: float | None
    mp3_level: float | None


def draw(recipe: str, rng: np.random.Generator) -> DomainParams:
    """Draw the parameters of ``recipe`` (a key of :data:`RECIPES`)."""
    r = RECIPES[recipe]

    def u(key):
        return None if r[key] is None else float(rng.uniform(*r[key]))

    return DomainParams(u("gain_db"), u("drive"), u("tilt_db_per_oct"), u("lowpass_hz"), u("mp3_level"))


def tilt(y: np.ndarray, sr: int, db_per_octave: float, pivot_hz: float = 1000.0) -> np.ndarray:
    """A spectral tilt of ``db_per_octave`` around ``pivot_hz`` (a broad EQ), in the FFT domain."""
    spec = np.fft.rfft(y)
    f = np.fft.rfftfreq(len(y), 1 / sr)
    octaves = np.log2(np.maximum(f, 20.0) / pivot_hz)
    return np.fft.irfft(spec * 10 ** (db_per_octave * octaves / 20), n=len(y)).astype(np.float32)


def lowpass(y: np.ndarray, sr: int, cutoff_hz: float) -> np.ndarray:
    """An 8th-order Butterworth low-pass (a band-limited source)."""
    from scipy.signal import butter, sosfilt

    if cutoff_hz >= sr / 2:
        return y
    return sosfilt(butter(8, cutoff_hz, fs=sr, output="sos"), y).astype(np.float32)


def mp3_roundtrip(y: np.ndarray, sr: int, level: float) -> np.ndarray:
    """Encode to mp3 and decode again (libsndfile's LAME; ``level`` 0 = best, 1 = smallest)."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, y, sr, format="MP3", compression_level=float(np.clip(level, 0.0, 1.0)))
    buf.seek(0)
    out, _ = sf.read(buf, dtype="float32")
    out = out[: len(y)]
    return np.pad(out, (0, len(y) - len(out))) if len(out) < len(y) else out


def apply(y: np.ndarray, sr: int, p: DomainParams) -> np.ndarray:
    """(n,) mono float32 -> the same length, transformed by ``p``."""
    out = tilt(y.astype(np.float32), sr, p.tilt_db_per_oct)
    if p.lowpass_hz is not None:
        out = lowpass(out, sr, p.lowpass_hz)
    out = out * np.float32(10 ** (p.gain_db / 20))
    if p.drive is not None:  # a soft limiter: loud masters are squashed, not clipped
        out = np.tanh(p.drive * out) / np.tanh(p.drive)
    out = np.clip(out, -1.0, 1.0).astype(np.float32)
    if p.mp3_level is not None:
        out = mp3_roundtrip(out, sr, p.mp3_level)
    return out
