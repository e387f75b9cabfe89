"""Helpers for tests and benchmarks: generated music, the reference recipe of the GTZAN
features table, bounded loopback attackers of the web app (:mod:`.attackers`) and damaged
audio files (:mod:`.fuzz_cases`). Not used by genrescope itself; it imports only the
package's bottom layer (librosa for the reference, which the ``test`` extra installs)."""
from __future__ import annotations

import numpy as np


def synth_music(duration: float = 3.0, sr: int = 22050, *, seed: int = 0, channels: int = 1,
                tempo: float = 120.0, f0: float = 220.0) -> np.ndarray:
    """A chord with a decaying envelope on every beat, plus a little noise: (n,) or (n, channels)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration * sr)) / sr
    chord = sum(np.sin(2 * np.pi * f0 * r * t + rng.uniform(0, 6.28)) for r in (1.0, 1.25, 1.5, 2.0))
    beat = 60.0 / tempo
    env = np.exp(-6.0 * (t % beat))
    y = 0.15 * chord * env + 0.01 * rng.standard_normal(len(t))
    y = y.astype(np.float32)
    if channels > 1:
        y = np.stack([y * (0.6 + 0.4 * c / channels) for c in range(channels)], axis=1)
    return y


def librosa_gtzan_row(y: np.ndarray, sr: int) -> dict[str, float]:
    """The GTZAN features table's recipe in librosa 0.11 (the reference genrescope.features.gtzan_table
    is held to): reflect padding, old effects.hpss inversion, beat_track tempo."""
    import librosa

    kw = dict(pad_mode="reflect")
    feats = {
        "chroma_stft": librosa.feature.chroma_stft(y=y, sr=sr, **kw),
        "rms": librosa.feature.rms(y=y, **kw),
        "spectral_centroid": librosa.feature.spectral_centroid(y=y, sr=sr, **kw),
        "spectral_bandwidth": librosa.feature.spectral_bandwidth(y=y, sr=sr, **kw),
        "rolloff": librosa.feature.spectral_rolloff(y=y, sr=sr, **kw),
        "zero_crossing_rate": librosa.feature.zero_crossing_rate(y),
    }
    H, P = librosa.decompose.hpss(librosa.stft(y, **kw))
    feats["harmony"] = librosa.util.fix_length(librosa.istft(H), size=len(y))
    feats["perceptr"] = librosa.util.fix_length(librosa.istft(P), size=len(y))
    row = {}
    for name, x in feats.items():
        row[f"{name}_mean"] = float(np.mean(x, dtype=np.float64))
        row[f"{name}_var"] = float(np.var(x, dtype=np.float64))
    onset = librosa.onset.onset_strength(y=y, sr=sr, aggregate=np.median, **kw)
    # beat_track's tempo, without running its beat tracker: 0 when there is no onset at all
    row["tempo"] = float(np.atleast_1d(librosa.feature.tempo(onset_envelope=onset, sr=sr))[0]) if onset.any() else 0.0
    for i, c in enumerate(librosa.feature.mfcc(y=y, sr=sr, n_mfcc=20, **kw), start=1):
        row[f"mfcc{i}_mean"], row[f"mfcc{i}_var"] = float(np.mean(c)), float(np.var(c))
    return row
