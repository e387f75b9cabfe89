"""``genrescope plot``: one PNG of what genrescope sees in a file, panels aligned in time.

From the top: the waveform, the power spectrogram (dB), the mel spectrogram (dB), the MFCCs
and, with a model, its genre timeline (the top genres' probabilities per window), optionally
with the labelled segments (:mod:`genrescope.insight.segments`) and the occlusion saliency of
the top genre (:mod:`genrescope.insight.saliency`). The features are computed with the
model's own :class:`~genrescope.config.FeatureConfig` (genrescope's default without a model),
by the one feature path, :mod:`genrescope.features.spectrogram`.

Needs matplotlib (in the ``train`` extra); it is imported only when a plot is drawn.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from genrescope.errors import GenrescopeError

#: Genres drawn in the timeline panel.
TOP_GENRES = 6
#: Spectrogram columns drawn at most (longer songs are averaged down to this many).
MAX_COLUMNS = 3000
COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"]


def _matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise GenrescopeError("genrescope plot needs matplotlib: pip install 'genrescope[train]' "
                              "(or pip install matplotlib)") from e
    return Figure, FigureCanvasAgg


def thin_columns(S: np.ndarray, max_cols: int = MAX_COLUMNS) -> np.ndarray:
    """(bins, T) -> (bins, <= max_cols): the mean of each run of ``ceil(T / max_cols)`` columns."""
    k = int(np.ceil(S.shape[1] / max_cols)) if S.shape[1] > max_cols else 1
    if k == 1:
        return S
    n = S.shape[1] // k * k
    return S[:, :n].reshape(S.shape[0], -1, k).mean(axis=2)


def envelope(y: np.ndarray, n_points: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """Min and max of the waveform in ``n_points`` equal slices (or the samples themselves)."""
    if len(y) <= 2 * n_points:
        return y, y
    k = len(y) // n_points
    seg = y[: k * n_points].reshape(n_points, k)
    return seg.min(axis=1), seg.max(axis=1)


def file_features(y: np.ndarray, cfg) -> dict[str, np.ndarray]:
    """The panels' arrays: power spectrogram dB, mel dB (both clipped 80 dB below the peak), MFCC."""
    from genrescope.features.spectrogram import (
        melspectrogram,
        mfcc_from_mel,
        power_to_db,
        stft_magnitude,
    )

    S = stft_magnitude(y, n_fft=cfg.n_fft, hop_length=cfg.hop_length, center=cfg.center, pad_mode=cfg.pad_mode,
                       power=2.0)
    mel = melspectrogram(y, cfg)
    return {"stft_db": power_to_db(S, amin=cfg.log_floor, top_db=80.0),
            "mel_db": power_to_db(mel, amin=cfg.log_floor, top_db=80.0), "mfcc": mfcc_from_mel(mel, cfg)}


def _image(ax, S, duration, top, label, cmap="magma"):
    ax.imshow(thin_columns(S), origin="lower", aspect="auto", cmap=cmap, extent=(0, duration, 0, top),
              interpolation="nearest")
    ax.set_ylabel(label)


def _timeline(ax, pred, segments=None, saliency=None) -> None:
    from genrescope.insight.segments import fmt_time

    tl = pred.timeline
    genres = [g for g, _ in pred.genres[:TOP_GENRES]]
    t = (np.asarray(tl.start_s) + np.asarray(tl.end_s)) / 2
    for i, g in enumerate(genres):
        ax.plot(t, tl.probs[:, tl.labels.index(g)], color=COLORS[i % len(COLORS)], lw=1.6, label=g)
    if saliency is not None and saliency["labels"]:
        g = saliency["labels"][0]
        s = np.asarray(saliency["drop"], np.float64)[:, 0]
        mid = (np.asarray(saliency["start_s"]) + np.asarray(saliency["end_s"])) / 2
        scale = max(1e-6, float(np.abs(s).max()))
        ax.fill_between(mid, 0, np.clip(s, 0, None) / scale, step="mid", color="#555", alpha=0.3,
                        label=f"occlusion saliency of {g} (scaled)")
    if segments:
        for k, seg in enumerate(segments):
            ax.axvspan(seg["start_s"], seg["end_s"], ymin=0.93, ymax=1.0, color=COLORS[k % 2 * 3], alpha=0.6)
            ax.text((seg["start_s"] + seg["end_s"]) / 2, 1.04, f"{seg['label']} {fmt_time(seg['start_s'])}",
                    ha="center", va="bottom", fontsize=7, clip_on=True)
    ax.set_ylim(0, 1.1 if segments else 1.0)
    ax.set_ylabel("probability")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), fontsize=8, ncol=min(7, len(genres) + 1),
              frameon=False)


def plot_file(path: str | os.PathLike, out: str | os.PathLike, *, model: str | None = None,
              segments: bool = False, saliency: bool = False, dpi: int = 110) -> Path:
    """Draw the panels of ``path`` into the PNG ``out``; returns ``out``.

    Parameters
    ----------
    model : str, optional
        A shipped name or model file: its features are drawn and its timeline is added.
    segments, saliency : bool
        Add the labelled segments / the top genre's occlusion saliency to the timeline (with
        the default model when ``model`` is None).
    """
    Figure, Canvas = _matplotlib()
    from genrescope.audio.decode import load_audio
    from genrescope.config import DEFAULT_FEATURES

    pred = predictor = None
    cfg = DEFAULT_FEATURES
    if model is None and (segments or saliency):  # they need a model: the one predict uses by default
        from genrescope.inference.registry import DEFAULT_MODEL

        model = DEFAULT_MODEL
    if model is not None:
        from genrescope.inference.predict import Predictor

        predictor = Predictor(model)
        if predictor.model.kind != "table":
            cfg = predictor.model.feature_config
        pred = predictor.predict(path)
    y = load_audio(path, sr=cfg.sr)
    duration = len(y) / cfg.sr
    feats = file_features(y, cfg)
    n = 5 if pred is not None else 4
    fig = Figure(figsize=(12, 2.0 * n + 0.6), dpi=dpi)
    Canvas(fig)
    axes = fig.subplots(n, 1, sharex=True, gridspec_kw={"height_ratios": [0.8, 1.2, 1.2, 0.9, 1.3][:n]})
    lo, hi = envelope(y)
    tt = np.linspace(0, duration, len(lo))
    axes[0].fill_between(tt, lo, hi, color="#4e79a7", lw=0.3)
    axes[0].set_ylabel("waveform")
    _image(axes[1], feats["stft_db"], duration, cfg.sr / 2000, "STFT (kHz)")
    _image(axes[2], feats["mel_db"], duration, cfg.n_mels, "mel band")
    mf = feats["mfcc"]  # each coefficient standardised: c0 (loudness) would otherwise take the whole colour range
    mf = (mf - mf.mean(axis=1, keepdims=True)) / (mf.std(axis=1, keepdims=True) + 1e-6)
    _image(axes[3], mf, duration, cfg.n_mfcc, "MFCC (z)", cmap="coolwarm")
    if pred is not None:
        segs = sal = None
        if segments:
            from genrescope.insight.segments import segment_timeline

            segs = segment_timeline(pred.timeline, pred.genres, duration_s=pred.duration_s)
        if saliency:
            from genrescope.insight.saliency import occlusion_saliency

            sal = occlusion_saliency(predictor, path)
        _timeline(axes[4], pred, segs, sal)
    axes[-1].set_xlim(0, duration)
    axes[-1].set_xlabel("time (s)")
    title = Path(path).name + (f"  ·  model {pred.model}" if pred is not None else "")
    title += f"  ·  sr {cfg.sr} Hz, n_fft {cfg.n_fft}, hop {cfg.hop_length}, {cfg.n_mels} mels"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out
