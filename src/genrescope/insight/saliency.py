"""Saliency over time: which seconds of a song drove each genre (``--saliency``).

Method: occlusion. Each model window is run again with one stretch of ``occlude_s`` seconds
replaced by silence *in feature space* (the config's log compression of zero power, so
exactly what the model sees for digital silence), once per stretch. The saliency of a stretch
for genre g is the drop of the window's probability of g: positive where those seconds
supported g, negative where they argued against it, in units of probability. The stretches
are reported on one grid of ``occlude_s`` from the start of the song (a window whose start is
off that grid lands on the nearest stretch at or before it, so times are exact to one stretch);
where windows overlap, the drops that land on one stretch are averaged.

Why occlusion rather than gradients: it needs only forward passes, so it works in the plain
install (ONNX Runtime, no torch) and for every model genrescope runs, a backbone with a head
behind it included; and its numbers answer a plain question ("how much would the genre lose
without these seconds?") where a gradient measures an infinitesimal change that saturated
sigmoids and ReLUs make noisy. The price is ``window / occlude_s`` extra model calls per window
(about 6 for musicnn with the default half second), which is why it is opt-in.
"""
from __future__ import annotations

import os

import numpy as np

from genrescope.errors import GenrescopeError

OCCLUDE_S = 0.5
#: Genres reported (the track's top ones); the drops of all labels are computed anyway.
TOP = 5


def silence_value(cfg, kind: str) -> float:
    """The feature value of digital silence under ``cfg`` (e.g. 0 for log10(1 + k S), -100 dB)."""
    from genrescope.features.spectrogram import compress

    if kind not in ("log_mel", "stft"):
        raise GenrescopeError(f"saliency: occlusion needs log-mel or STFT input, not {kind!r}")
    return float(compress(np.zeros((1, 1), np.float32), cfg)[0, 0])


def occlusion_drops(predict, windows: np.ndarray, chunk: int, fill: float, batch: int = 8) -> np.ndarray:
    """Probability drop of every label when each ``chunk``-frame stretch of each window is silenced.

    Parameters
    ----------
    predict : callable
        (N, n_bins, T) windows -> (N, G) probabilities.
    windows : np.ndarray
        (W, n_bins, T) model windows.

    Returns
    -------
    np.ndarray
        (W, ceil(T / chunk), G): full-window probability minus occluded probability.
    """
    W, _, T = windows.shape
    n_chunks = -(-T // chunk)
    full = predict(windows)  # (W, G)
    drops = np.empty((W, n_chunks, full.shape[1]), np.float32)
    for w in range(W):
        occluded = np.repeat(windows[w:w + 1], n_chunks, axis=0)  # (n_chunks, n_bins, T)
        for c in range(n_chunks):
            occluded[c, :, c * chunk:(c + 1) * chunk] = fill
        probs = np.concatenate([predict(occluded[i:i + batch]) for i in range(0, n_chunks, batch)])
        drops[w] = full[w][None, :] - probs
    return drops


def occlusion_saliency(predictor, path: str | os.PathLike, *, occlude_s: float = OCCLUDE_S, top: int = TOP) -> dict:
    """Occlusion saliency over the whole file for the track's top genres.

    Returns
    -------
    dict
        ``{"method": "occlusion", "occlude_s", "window_s", "labels": [top genres], "start_s": [...],
        "end_s": [...], "drop": [[per label] per stretch]}``: one row per stretch of the song.
    """
    from genrescope.audio.decode import load_audio
    from genrescope.features.spectrogram import compute
    from genrescope.features.windows import slice_windows

    m = predictor.model
    if m.kind == "table" or m.window_frames is None:
        raise GenrescopeError(f"saliency: {m.name} does not read fixed windows of a spectrogram")
    cfg = m.feature_config
    y = load_audio(path, sr=cfg.sr)
    feats = compute(y, cfg, m.kind)
    windows, start_s, _ = slice_windows(feats, cfg, win_frames=m.window_frames)
    chunk = max(1, round(occlude_s * cfg.frame_rate))
    n_labels = len(m.labels)  # a head behind a backbone also returns the backbone's tags after its genres

    def predict(x: np.ndarray) -> np.ndarray:
        return m.predict_windows(x)[:, :n_labels]

    drops = occlusion_drops(predict, windows, chunk, silence_value(cfg, m.kind))
    # every stretch onto one absolute grid of `chunk` frames; overlapping windows are averaged
    n_frames = feats.shape[1]
    n_bins = -(-max(n_frames, m.window_frames) // chunk)
    total = np.zeros((n_bins, drops.shape[2]))
    count = np.zeros(n_bins)
    for w, s in enumerate(np.round(start_s * cfg.frame_rate).astype(int)):
        for c in range(drops.shape[1]):
            b = min(n_bins - 1, (s + c * chunk) // chunk)
            total[b] += drops[w, c]
            count[b] += 1
    keep = count > 0
    mean = total[keep] / count[keep][:, None]
    starts = np.flatnonzero(keep) * chunk / cfg.frame_rate
    duration = len(y) / cfg.sr
    track = windows_probs_order(predictor, predict(windows), top)
    cols = [m.labels.index(g) for g in track]
    return {"method": "occlusion", "occlude_s": round(chunk / cfg.frame_rate, 4),
            "window_s": round(m.window_frames / cfg.frame_rate, 3), "labels": track,
            "start_s": [round(float(t), 3) for t in starts],
            "end_s": [round(float(min(t + chunk / cfg.frame_rate, duration)), 3) for t in starts],
            "drop": np.round(mean[:, cols].astype(np.float64), 4).tolist()}


def windows_probs_order(predictor, probs: np.ndarray, top: int) -> list[str]:
    """The track's top genres (the genre labels ranked by the mean window probability).

    ``probs`` holds one column per ``model.labels`` (a head's extra tag columns cut off).
    """
    m = predictor.model
    mean = probs[:, :len(m.labels)].mean(axis=0)
    genres = set(m.genre_labels)
    ranked = [m.labels[i] for i in np.argsort(-mean, kind="stable") if m.labels[i] in genres]
    return ranked[:top]


def strongest_stretch(saliency: dict, column: int) -> tuple[float, float, float]:
    """The stretch of at least one model window whose silencing lowers a genre the most.

    Adjacent ``occlude_s`` stretches are pooled into spans of one model window (``window_s``;
    the stretches alone are too short to name in whole seconds) and the span with the largest
    mean drop wins.

    Returns
    -------
    tuple
        ``(start_s, end_s, mean drop)`` of that span for the ``column``-th reported genre.
    """
    drop = np.asarray([row[column] for row in saliency["drop"]], np.float64)
    step = saliency["occlude_s"] or 1.0
    span = max(1, min(len(drop), int(np.ceil(saliency.get("window_s", step) / step - 1e-9))))
    means = np.convolve(drop, np.ones(span) / span, mode="valid")  # (len(drop) - span + 1,)
    k = int(np.argmax(means))
    return float(saliency["start_s"][k]), float(saliency["end_s"][k + span - 1]), float(means[k])
