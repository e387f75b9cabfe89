"""The "GTZAN features" table (Kaggle ``features_30_sec.csv``), recomputed from audio.

The widely shared table holds, per 30 s track, means and variances over frames of
librosa descriptors. A model trained on it can only classify a new file if the new
file's row is computed the way the table's rows were, which is what this module does,
in numpy/scipy on top of :mod:`genrescope.features.spectrogram`.

How the table was made (found by matching its values on the original excerpts, see
``bench/gtzan_table_agreement.py``): ``librosa.load`` at 22050 Hz mono, then librosa's
defaults of before 0.10, in particular *reflect* padding of every centred STFT and
frame (``pad_mode="reflect"``), 2048-point frames, hop 512:

* ``chroma_stft``: power STFT, tuning estimated from spectral peaks, 12 bins, max-normalised;
* ``rms``, ``spectral_centroid``, ``spectral_bandwidth``, ``rolloff`` (85 %): magnitude STFT;
* ``zero_crossing_rate``: frames edge-padded, threshold 1e-10;
* ``harmony`` / ``perceptr``: the two *waveforms* of ``effects.hpss`` (median kernels of 31,
  soft masks with power 2), means and variances over samples. That librosa inverted the
  STFTs without ``length`` and zero-padded the result to ``len(y)``, so the last
  ``len(y) % 512`` samples are zeros; we do the same;
* ``tempo``: ``beat.beat_track``'s global estimate (median-aggregated onset strength of
  the dB mel spectrogram, 8 s autocorrelation, log-normal prior at 120 BPM);
* ``mfcc1..20``: 128 Slaney mel bands, dB with ``top_db=80``, orthonormal DCT-II.

Means and variances are over frames (``numpy.var``, ``ddof=0``). One complex STFT per
file feeds every spectral column.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Iterable

import numpy as np

from genrescope.features import spectrogram as F
from genrescope.features import spectral
from genrescope.config import FeatureConfig
from genrescope.errors import DatasetError, GenrescopeError

#: The table's front end. ``window_s`` is the length of the tracks the table describes;
#: :func:`extract_row` summarises whatever it is given in one row.
GTZAN_TABLE_FEATURES = FeatureConfig(
    sr=22050, n_fft=2048, hop_length=512, n_mels=128, fmin=0.0, fmax=None, mel_htk=False, mel_norm="slaney",
    power=2.0, center=True, pad_mode="reflect", log="db", log_floor=1e-10, top_db=None, n_mfcc=20,
    mfcc_top_db=80.0, window_s=30.0, window_hop_s=30.0,
)

#: librosa's ``power_to_db`` default, used by ``onset_strength`` before the flux.
ONSET_TOP_DB = 80.0
#: ``librosa.decompose.hpss`` default median kernel, in frames and in bins.
HPSS_KERNEL = 31

_DESCRIPTORS = ["chroma_stft", "rms", "spectral_centroid", "spectral_bandwidth", "rolloff",
                "zero_crossing_rate", "harmony", "perceptr"]

#: The 57 feature columns, in the table's order (its CSV minus filename, length, label).
COLUMNS: list[str] = (
    [f"{d}_{s}" for d in _DESCRIPTORS for s in ("mean", "var")]
    + ["tempo"]
    + [f"mfcc{i}_{s}" for i in range(1, 21) for s in ("mean", "var")]
)


def _waveform(source: str | os.PathLike | np.ndarray, sr: int | None, cfg: FeatureConfig) -> np.ndarray:
    """Mono float32 at ``cfg.sr``, at least one frame long."""
    if isinstance(source, np.ndarray):
        if sr is None:
            raise GenrescopeError("extract_row: give sr= with a waveform array")
        if not np.issubdtype(source.dtype, np.floating):
            raise GenrescopeError(f"extract_row: expected float samples in [-1, 1], got dtype {source.dtype}")
        y = source.astype(np.float32, copy=False)
        if y.ndim == 2:  # (n, channels), as load_audio(mono=False) returns
            y = y.mean(axis=1, dtype=np.float32)
        if y.ndim != 1:
            raise GenrescopeError(f"extract_row: expected a waveform of shape (n,) or (n, channels), got {y.shape}")
        if not np.all(np.isfinite(y)):
            raise GenrescopeError("extract_row: the waveform contains NaN or infinity")
        if sr != cfg.sr:
            import soxr

            y = soxr.resample(y, sr, cfg.sr, quality="HQ").astype(np.float32, copy=False)
        if len(y) < cfg.n_fft:
            raise GenrescopeError(f"extract_row: need at least {cfg.n_fft} samples at {cfg.sr} Hz, got {len(y)}")
        return y
    from genrescope.audio.decode import load_audio

    return load_audio(source, sr=cfg.sr, mono=True, min_duration=cfg.n_fft / cfg.sr)


def _stats(prefix: str, x: np.ndarray) -> dict[str, float]:
    # float64 accumulation: the harmony/perceptr means are tiny differences of large sums
    return {f"{prefix}_mean": float(np.mean(x, dtype=np.float64)), f"{prefix}_var": float(np.var(x, dtype=np.float64))}


def _hpss_waveforms(D: np.ndarray, n: int, cfg: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic and percussive waveforms of ``len n``, zero-padded like the table's librosa."""
    H, P = spectral.hpss(D, kernel_size=HPSS_KERNEL, power=2.0)
    out = []
    for X in (H, P):
        x = spectral.istft(X, hop_length=cfg.hop_length, center=cfg.center)[:n]
        out.append(np.pad(x, (0, n - len(x))))
    return out[0], out[1]


def row_from_waveform(y: np.ndarray, cfg: FeatureConfig = GTZAN_TABLE_FEATURES) -> dict[str, float]:
    """The table's 57 values for a mono float32 waveform already at ``cfg.sr``."""
    sr, n_fft, hop = cfg.sr, cfg.n_fft, cfg.hop_length
    D = spectral.stft(y, n_fft=n_fft, hop_length=hop, center=cfg.center, pad_mode=cfg.pad_mode)  # (F, T) complex
    power = D.real * D.real + D.imag * D.imag  # (F, T), as features.stft_magnitude(power=2)
    S = np.sqrt(power)  # (F, T) magnitude
    mel = F.filterbank_for(cfg) @ power  # (n_mels, T)

    row: dict[str, float] = {}
    row.update(_stats("chroma_stft", spectral.chroma_stft(power, sr=sr, n_fft=n_fft)))
    row.update(_stats("rms", spectral.rms(y, frame_length=n_fft, hop_length=hop, center=cfg.center,
                                          pad_mode=cfg.pad_mode)))
    centroid = spectral.spectral_centroid(S, sr=sr, n_fft=n_fft)
    row.update(_stats("spectral_centroid", centroid))
    row.update(_stats("spectral_bandwidth", spectral.spectral_bandwidth(S, sr=sr, n_fft=n_fft, centroid=centroid)))
    row.update(_stats("rolloff", spectral.spectral_rolloff(S, sr=sr, n_fft=n_fft, roll_percent=0.85)))
    row.update(_stats("zero_crossing_rate", spectral.zero_crossing_rate(y, frame_length=n_fft, hop_length=hop,
                                                                        center=cfg.center)))
    del S, power
    harm, perc = _hpss_waveforms(D, len(y), cfg)
    del D
    row.update(_stats("harmony", harm))
    row.update(_stats("perceptr", perc))
    mel_db = F.power_to_db(mel, amin=cfg.log_floor, top_db=ONSET_TOP_DB)
    onset = spectral.onset_strength(mel_db, n_fft=n_fft, hop_length=hop, aggregate=np.median)
    row["tempo"] = spectral.tempo(onset, sr=sr, hop_length=hop)
    mfcc = F.mfcc_from_mel(mel, cfg)  # (n_mfcc, T)
    for i, coef in enumerate(mfcc, start=1):
        row.update(_stats(f"mfcc{i}", coef))
    return {c: row[c] for c in COLUMNS}


def extract_row(source: str | os.PathLike | np.ndarray, sr: int | None = None, *,
                cfg: FeatureConfig = GTZAN_TABLE_FEATURES) -> dict[str, float]:
    """One row of the GTZAN features table for an audio file or a waveform.

    Parameters
    ----------
    source : path-like or np.ndarray
        An audio file (decoded with :func:`genrescope.audio.decode.load_audio` at ``cfg.sr``,
        mono), or a waveform of shape (n,) or (n, channels).
    sr : int or None
        Sample rate of a waveform (required then; resampled to ``cfg.sr`` if different).
        Ignored for files.
    cfg : FeatureConfig
        The front end; the default reproduces the published table.

    Returns
    -------
    dict[str, float]
        The 57 :data:`COLUMNS`, in order. The table's rows summarise 30 s excerpts;
        other lengths give comparable but not identical statistics.

    Raises
    ------
    AudioError
        The file is missing, unreadable or shorter than one frame.
    GenrescopeError
        A waveform is malformed, or given without ``sr``.
    """
    return row_from_waveform(_waveform(source, sr, cfg), cfg)


def extract_rows(paths: Iterable[str | os.PathLike], *,
                 cfg: FeatureConfig = GTZAN_TABLE_FEATURES) -> list[dict[str, float]]:
    """:func:`extract_row` for each file, in order."""
    return [extract_row(p, cfg=cfg) for p in paths]


def rows_to_matrix(rows: Iterable[dict[str, float]]) -> np.ndarray:
    """Stack rows into an (n, 57) float64 matrix in :data:`COLUMNS` order, like :func:`read_table`'s X."""
    return np.array([[r[c] for c in COLUMNS] for r in rows], dtype=np.float64).reshape(-1, len(COLUMNS))


def read_table(csv_path: str | os.PathLike, *, require_label: bool = True
               ) -> tuple[list[str], np.ndarray, list[str] | None, list[str] | None]:
    """Read a CSV in the table's format (the Kaggle ``features_30_sec.csv`` / ``features_3_sec.csv``).

    Columns other than the 57 features, ``filename``, ``label`` and ``split`` (such as
    ``length``) are ignored; the order of columns does not matter.

    Returns
    -------
    filenames : list of str
        The ``filename`` column (else ``path``; else ``row<i>``).
    X : np.ndarray
        float64, shape (n, 57), columns in :data:`COLUMNS` order.
    labels : list of str or None
        The ``label`` column; None when absent and ``require_label`` is False.
    splits : list of str or None
        The ``split`` column, or None when there is none.

    Raises
    ------
    DatasetError
        Missing file, missing columns, an empty table or a value that is not a number.
    """
    path = Path(csv_path)
    if not path.is_file():
        raise DatasetError(f"{path}: feature table not found")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        need = COLUMNS + (["label"] if require_label else [])
        missing = [c for c in need if c not in header]
        if missing:
            shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
            raise DatasetError(f"{path}: not a GTZAN features table, missing column(s): {shown}")
        name_col = next((c for c in ("filename", "path") if c in header), None)
        names, X, labels, splits = [], [], [], []
        for i, rec in enumerate(reader):
            line = i + 2  # 1-based, after the header
            try:
                X.append([float(rec[c]) for c in COLUMNS])
            except (TypeError, ValueError) as e:
                raise DatasetError(f"{path}, line {line}: a feature value is missing or not a number ({e})") from e
            names.append(rec[name_col] if name_col else f"row{i}")
            labels.append(rec.get("label") or "")
            splits.append(rec.get("split") or "")
    if not X:
        raise DatasetError(f"{path}: the table has a header but no rows")
    if require_label and not all(labels):
        raise DatasetError(f"{path}, line {labels.index('') + 2}: empty label")
    Xa = np.asarray(X, dtype=np.float64)
    return (names, Xa, labels if "label" in header else None, splits if "split" in header else None)


__all__ = ["COLUMNS", "GTZAN_TABLE_FEATURES", "extract_row", "extract_rows", "row_from_waveform",
           "rows_to_matrix", "read_table"]
