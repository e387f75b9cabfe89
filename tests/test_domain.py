"""Domain augmentation (genrescope.training.domain): reproducible draws, pure application,
and each stage doing what it claims."""
from __future__ import annotations

import numpy as np
import pytest

from genrescope.training import domain

SR = 16000


def _noise(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


def _band_energy(y: np.ndarray, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(y)) ** 2
    f = np.fft.rfftfreq(len(y), 1 / SR)
    return float(spec[(f >= lo) & (f < hi)].sum())


@pytest.mark.parametrize("recipe", sorted(domain.RECIPES))
def test_draws_are_reproducible_and_within_the_recipe(recipe):
    a = domain.draw(recipe, np.random.default_rng(7))
    b = domain.draw(recipe, np.random.default_rng(7))
    c = domain.draw(recipe, np.random.default_rng(8))
    assert a == b and a != c
    lo, hi = domain.RECIPES[recipe]["gain_db"]
    assert lo <= a.gain_db <= hi


@pytest.mark.parametrize("recipe", sorted(domain.RECIPES))
def test_apply_keeps_length_and_is_finite_and_deterministic(recipe):
    y = _noise()
    p = domain.draw(recipe, np.random.default_rng(1))
    out = domain.apply(y, SR, p)
    assert out.shape == y.shape and out.dtype == np.float32 and np.isfinite(out).all()
    assert np.array_equal(out, domain.apply(y, SR, p))
    assert not np.array_equal(out, y)


def test_zero_tilt_is_the_identity_and_positive_tilt_brightens():
    y = _noise()
    assert np.allclose(domain.tilt(y, SR, 0.0), y, atol=1e-6)
    bright = domain.tilt(y, SR, 3.0)
    ratio = _band_energy(bright, 4000, 8000) / _band_energy(bright, 100, 500)
    assert ratio > 10 * _band_energy(y, 4000, 8000) / _band_energy(y, 100, 500)


def test_lowpass_removes_the_band_above_the_cutoff():
    y = _noise()
    out = domain.lowpass(y, SR, 3000.0)
    assert _band_energy(out, 5000, 8000) < 1e-3 * _band_energy(y, 5000, 8000)
    assert _band_energy(out, 100, 2000) > 0.8 * _band_energy(y, 100, 2000)


def test_mp3_roundtrip_keeps_length_and_roughly_the_signal():
    t = np.arange(2 * SR) / SR
    y = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = domain.mp3_roundtrip(y, SR, 0.5)
    assert out.shape == y.shape and np.isfinite(out).all()
    assert abs(np.sqrt(np.mean(out ** 2)) - np.sqrt(np.mean(y ** 2))) < 0.05
