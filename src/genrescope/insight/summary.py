"""What genrescope sees in one file: header facts, loudness and a log-mel summary (``genrescope info``)."""
from __future__ import annotations

import warnings

import numpy as np

from genrescope.audio.decode import audio_info, load_audio
from genrescope.config import FeatureConfig
from genrescope.errors import SilentAudioWarning
from genrescope.features.spectrogram import compress, melspectrogram, mfcc_from_mel


def summarize(path, sr: int = 22050) -> dict:
    """Header facts, loudness and a log-mel summary of one file (raises GenrescopeError)."""
    info = audio_info(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SilentAudioWarning)
        y = load_audio(path, sr=sr)
    cfg = FeatureConfig(sr=sr)
    mel = melspectrogram(y, cfg)
    lm = compress(mel, cfg)
    rms = float(np.sqrt(np.mean(y.astype(np.float64) ** 2))) if y.size else 0.0
    mf = mfcc_from_mel(mel, cfg)
    return {
        "path": str(path),
        "format": f"{info.format}/{info.subtype}",
        "native_sr": info.sr,
        "channels": info.channels,
        "duration_s": round(len(y) / sr, 3),
        "sr": sr,
        "peak_dbfs": round(20 * np.log10(max(float(np.abs(y).max()), 1e-10)), 2),
        "rms_dbfs": round(20 * np.log10(max(rms, 1e-10)), 2),
        "log_mel_shape": list(lm.shape),
        "log_mel_db_mean": round(float(lm.mean()), 2),
        "log_mel_db_std": round(float(lm.std()), 2),
        "mfcc1_mean": round(float(mf[0].mean()), 2),
        "warnings": [str(w.message) for w in caught],
    }


def format_summary(r: dict) -> str:
    """The text block of one file's :func:`summarize` row (or its error), ending in a blank line."""
    if "error" in r:
        return f"{r['path']}\n  error: {r['error']}\n\n"
    lines = [f"{r['path']}",
             f"  format      {r['format']}, {r['channels']} channel(s), {r['native_sr']} Hz",
             f"  duration    {r['duration_s']:.2f} s (analysed at {r['sr']} Hz)",
             f"  level       peak {r['peak_dbfs']:.1f} dBFS, rms {r['rms_dbfs']:.1f} dBFS",
             f"  log-mel     {r['log_mel_shape'][0]} bands x {r['log_mel_shape'][1]} frames, "
             f"mean {r['log_mel_db_mean']:.1f} dB, std {r['log_mel_db_std']:.1f} dB",
             f"  mfcc1 mean  {r['mfcc1_mean']:.1f}"]
    lines += [f"  warning     {w}" for w in r["warnings"]]
    return "\n".join(lines) + "\n\n"
