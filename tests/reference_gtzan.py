"""The recipe that made the "GTZAN features" table, in librosa 0.11: the reference that
genrescope.features.gtzan_table is held to by tests/test_gtzan_table.py and bench/gtzan_table_agreement.py.
Needs librosa (a test extra); genrescope itself never imports it."""
from __future__ import annotations

import numpy as np


def librosa_row(y: np.ndarray, sr: int) -> dict[str, float]:
    """The table's recipe in librosa 0.11: reflect padding, old effects.hpss inversion, beat_track tempo."""
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
