"""Fixed-length model windows cut from one spectrogram, and the one track-level aggregate.

The spectrogram of a song is computed once; windows are slices of it. The last window
is aligned to the end of the song so no trailing audio is dropped, and a song shorter
than one window is padded to one window.
"""
from __future__ import annotations

import numpy as np

from genrescope.config import FeatureConfig
from genrescope.errors import GenrescopeError

AGGREGATES = ("mean", "log_mean", "vote")


def window_starts(n_frames: int, win: int, hop: int) -> np.ndarray:
    """Start frames of windows of ``win`` frames every ``hop`` frames covering ``n_frames``.

    The last start is moved so the final window ends at the last frame; duplicates are
    dropped. A signal shorter than one window yields the single start 0.
    """
    if n_frames <= win:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, n_frames - win + 1, hop, dtype=np.int64)
    if starts[-1] + win < n_frames:
        starts = np.append(starts, n_frames - win)
    return starts


def slice_windows(feats: np.ndarray, cfg: FeatureConfig, *, win_frames: int | None = None,
                  pad_value: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut a (n_bins, n_frames) feature array into model windows.

    Parameters
    ----------
    feats : np.ndarray
        Features of a whole song, shape (n_bins, n_frames).
    cfg : FeatureConfig
        Supplies the window length and hop (``window_s``, ``window_hop_s``) and frame rate.
    win_frames : int, optional
        Override the window length in frames.
    pad_value : float, optional
        Value used to pad a song shorter than one window (default: ``feats.min()``).

    Returns
    -------
    windows : np.ndarray
        (n_windows, n_bins, win_frames) float32, a copy.
    start_s, end_s : np.ndarray
        (n_windows,) start and end time of each window in seconds.
    """
    if feats.ndim != 2:
        raise GenrescopeError(f"slice_windows: expected (n_bins, n_frames), got {feats.shape}")
    win = win_frames or cfg.window_frames
    n_bins, n = feats.shape
    if n < win:
        fill = float(feats.min()) if pad_value is None and feats.size else (pad_value or 0.0)
        padded = np.full((n_bins, win), fill, np.float32)
        padded[:, :n] = feats
        feats, n_eff = padded, n
    else:
        n_eff = n
    starts = window_starts(feats.shape[1], win, cfg.window_hop_frames)
    idx = starts[:, None] + np.arange(win)[None, :]
    windows = np.ascontiguousarray(feats[:, idx].transpose(1, 0, 2), dtype=np.float32)  # (N, n_bins, win)
    start_s = starts / cfg.frame_rate
    end_s = np.minimum(starts + win, n_eff) / cfg.frame_rate
    return windows, start_s, end_s


def aggregate(window_probs: np.ndarray, method: str = "mean") -> np.ndarray:
    """The track-level distribution from per-window class probabilities.

    Parameters
    ----------
    window_probs : np.ndarray
        (n_windows, n_classes) probabilities.
    method : str
        ``"mean"`` (average probability), ``"log_mean"`` (normalised geometric mean) or
        ``"vote"`` (share of windows whose top class each class is).

    Returns
    -------
    np.ndarray
        (n_classes,) float32.
    """
    p = np.asarray(window_probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0:
        raise GenrescopeError(f"aggregate: expected (n_windows >= 1, n_classes), got {p.shape}")
    if method == "mean":
        out = p.mean(axis=0)
    elif method == "log_mean":
        g = np.exp(np.log(np.clip(p, 1e-12, None)).mean(axis=0))
        out = g / g.sum()
    elif method == "vote":
        out = np.bincount(p.argmax(axis=1), minlength=p.shape[1]) / p.shape[0]
    else:
        raise GenrescopeError(f"aggregate: unknown method {method!r}; expected one of {AGGREGATES}")
    return out.astype(np.float32)
