"""Training-time augmentation of feature windows, reproducible by construction.

Random parameters are drawn from a seeded ``numpy.random.Generator`` in one step
(:func:`draw`), and applied in another (:func:`apply`), so that the same seed gives the
same augmented batch whatever else consumed random numbers, and a resumed run sees the
same augmentations as an uninterrupted one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

AUGMENTATIONS = ("crop", "gain", "specaugment", "mixup")


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations run, and how strong they are.

    Parameters
    ----------
    crop : bool
        Random crop: each training window starts at a random frame of its track
        (off: windows on a fixed grid).
    gain_db : float
        Random gain drawn uniformly in +-gain_db, added to dB features (0 = off).
    time_masks, time_mask_frac : int, float
        SpecAugment time masks: how many, and the longest as a fraction of the window.
    freq_masks, freq_mask_frac : int, float
        SpecAugment frequency masks: how many, and the widest as a fraction of the bins.
    mixup_alpha : float
        Beta(alpha, alpha) mixing weight for mixup (0 = off).
    """

    crop: bool = True
    gain_db: float = 6.0
    time_masks: int = 2
    time_mask_frac: float = 0.1
    freq_masks: int = 2
    freq_mask_frac: float = 0.1
    mixup_alpha: float = 0.2

    @classmethod
    def off(cls) -> "AugmentConfig":
        return cls(crop=False, gain_db=0.0, time_masks=0, freq_masks=0, mixup_alpha=0.0)

    @classmethod
    def from_names(cls, names: list[str] | None) -> "AugmentConfig":
        """Augmentations switched on by name (``AUGMENTATIONS``); None means all, [] means none."""
        if names is None:
            return cls()
        base, on = cls(), set(names)
        return cls(crop="crop" in on, gain_db=base.gain_db if "gain" in on else 0.0,
                   time_masks=base.time_masks if "specaugment" in on else 0,
                   freq_masks=base.freq_masks if "specaugment" in on else 0,
                   mixup_alpha=base.mixup_alpha if "mixup" in on else 0.0)


@dataclass
class Draw:
    """Random parameters for one batch of ``b`` windows."""

    gain: np.ndarray          # (b,) dB
    time_masks: np.ndarray    # (b, k, 2) start, width in frames
    freq_masks: np.ndarray    # (b, k, 2) start, width in bins
    mix_perm: np.ndarray      # (b,) partner index for mixup
    mix_lam: np.ndarray       # (b,) weight of the window itself


def draw(rng: np.random.Generator, cfg: AugmentConfig, b: int, n_bins: int, n_frames: int) -> Draw:
    """Draw every random parameter a batch needs, in a fixed order."""
    gain = rng.uniform(-cfg.gain_db, cfg.gain_db, b) if cfg.gain_db > 0 else np.zeros(b)

    def masks(k: int, frac: float, size: int) -> np.ndarray:
        width = rng.integers(0, max(1, int(frac * size)) + 1, (b, k))
        start = rng.integers(0, np.maximum(1, size - width + 1))
        return np.stack([start, width], axis=-1)

    tm = masks(cfg.time_masks, cfg.time_mask_frac, n_frames)
    fm = masks(cfg.freq_masks, cfg.freq_mask_frac, n_bins)
    if cfg.mixup_alpha > 0:
        perm = rng.permutation(b)
        lam = rng.beta(cfg.mixup_alpha, cfg.mixup_alpha, b)
        lam = np.maximum(lam, 1 - lam)  # the window keeps the larger share of itself
    else:
        perm, lam = np.arange(b), np.ones(b)
    return Draw(gain, tm, fm, perm, lam)


def apply(x: np.ndarray, y: np.ndarray, d: Draw, *, db_features: bool) -> tuple[np.ndarray, np.ndarray]:
    """Augment a batch.

    Parameters
    ----------
    x : np.ndarray
        (B, n_bins, T) float32 feature windows.
    y : np.ndarray
        (B, G) float32 target distributions (one-hot before mixup).
    d : Draw
        Parameters from :func:`draw` for this batch.
    db_features : bool
        Whether the features are in dB, where a gain is an offset (else gain is skipped).

    Returns
    -------
    x, y : np.ndarray
        Augmented copies.
    """
    x = x.astype(np.float32, copy=True)
    if db_features:
        x += d.gain.astype(np.float32)[:, None, None]
    fill = x.mean(axis=(1, 2))
    for i in range(len(x)):
        for s, w in d.time_masks[i]:
            x[i, :, s:s + w] = fill[i]
        for s, w in d.freq_masks[i]:
            x[i, s:s + w, :] = fill[i]
    lam = d.mix_lam.astype(np.float32)
    if not np.all(lam == 1):
        x = lam[:, None, None] * x + (1 - lam)[:, None, None] * x[d.mix_perm]
        y = lam[:, None] * y + (1 - lam)[:, None] * y[d.mix_perm]
    return x, y.astype(np.float32)
