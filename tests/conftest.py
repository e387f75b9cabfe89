"""Shared fixtures: generated audio (the suite never needs downloaded data) and the
optional real music in ../shared/data (tests using it skip when it is absent)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


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


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture
def write_audio(tmp_path):
    """Write generated audio to tmp_path: write_audio(name, duration=, sr=, channels=, **sf_kwargs)."""
    import soundfile as sf

    def _write(name: str, duration: float = 2.0, sr: int = 22050, channels: int = 1, seed: int = 0,
               y: np.ndarray | None = None, **kwargs) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if y is None:
            y = synth_music(duration, sr, seed=seed, channels=channels)
        ext = path.suffix.lower()
        fmt = {".mp3": dict(format="MP3"), ".ogg": dict(format="OGG", subtype="VORBIS"),
               ".opus": dict(format="OGG", subtype="OPUS"), ".au": dict(format="AU", subtype="PCM_16"),
               ".flac": dict(format="FLAC"), ".wav": dict(format="WAV", subtype="PCM_16")}.get(ext, {})
        fmt.update(kwargs)
        sf.write(str(path), y, sr, **fmt)
        return path

    return _write
