"""``genrescope info``: decode files and summarise what genrescope sees in them."""
from __future__ import annotations

import json
import warnings

import numpy as np

from genrescope.audio.decode import audio_info, find_audio_files, load_audio
from genrescope.config import FeatureConfig
from genrescope.errors import GenrescopeError, SilentAudioWarning
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


def run_info(args) -> int:
    files = find_audio_files(args.files)
    if not files:
        raise GenrescopeError(f"no audio files found in {' '.join(args.files)}")
    rows, failed = [], 0
    for f in files:
        try:
            rows.append(summarize(f, sr=args.sr))
        except GenrescopeError as e:
            failed += 1
            rows.append({"path": str(f), "error": str(e)})
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            if "error" in r:
                print(f"{r['path']}\n  error: {r['error']}\n")
                continue
            print(f"{r['path']}\n"
                  f"  format      {r['format']}, {r['channels']} channel(s), {r['native_sr']} Hz\n"
                  f"  duration    {r['duration_s']:.2f} s (analysed at {r['sr']} Hz)\n"
                  f"  level       peak {r['peak_dbfs']:.1f} dBFS, rms {r['rms_dbfs']:.1f} dBFS\n"
                  f"  log-mel     {r['log_mel_shape'][0]} bands x {r['log_mel_shape'][1]} frames, "
                  f"mean {r['log_mel_db_mean']:.1f} dB, std {r['log_mel_db_std']:.1f} dB\n"
                  f"  mfcc1 mean  {r['mfcc1_mean']:.1f}")
            for w in r["warnings"]:
                print(f"  warning     {w}")
            print()
    return 1 if failed else 0
