"""`genrescope plot`: one PNG with the panels aligned in time."""
from __future__ import annotations

import builtins

import numpy as np
import pytest

from genrescope.commands import main
from genrescope.config import MUSICNN_FEATURES
from genrescope.insight.plot import envelope, file_features, thin_columns

pytest.importorskip("matplotlib")


def _png_size(path):
    import struct

    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_thinning_and_envelope_keep_the_shape():
    S = np.arange(2 * 7000, dtype=np.float32).reshape(2, 7000)
    t = thin_columns(S, 3000)
    assert t.shape == (2, 2333) and t[0, 0] == pytest.approx(1.0)  # mean of columns 0, 1, 2
    y = np.sin(np.linspace(0, 100, 100000)).astype(np.float32)
    lo, hi = envelope(y, 1000)
    assert len(lo) == 1000 and np.all(lo <= hi) and hi.max() == pytest.approx(1, abs=1e-3)


def test_panels_use_the_model_s_config():
    y = np.random.default_rng(0).standard_normal(16000 * 3).astype(np.float32) * 0.1
    f = file_features(y, MUSICNN_FEATURES)
    assert f["stft_db"].shape == (257, 188) and f["mel_db"].shape == (96, 188) and f["mfcc"].shape == (20, 188)
    assert f["mel_db"].max() - f["mel_db"].min() <= 80.0 + 1e-3


def test_plot_without_a_model(write_audio, tmp_path, capsys):
    path = write_audio("a.wav", duration=4.0)
    out = tmp_path / "a.png"
    assert main(["plot", str(path), "-o", str(out)]) == 0
    w, h = _png_size(out)
    assert w == 1320 and 800 < h < 1100  # 4 panels


@pytest.mark.slow
def test_segments_without_a_model_use_the_default_model(write_audio, tmp_path):
    """As predict does, plot --segments / --saliency take the default model (genre10, a head
    behind a backbone) when --model is not given."""
    path = write_audio("a.wav", duration=7.0, sr=16000)
    out = tmp_path / "a.png"
    assert main(["plot", str(path), "-o", str(out), "--segments", "--saliency"]) == 0
    w, h = _png_size(out)
    assert w == 1320 and h > 1100  # the timeline panel is there


@pytest.mark.slow
def test_plot_with_a_model_segments_and_saliency(write_audio, tmp_path):
    path = write_audio("b.wav", duration=8.0, sr=16000)
    out = tmp_path / "b.png"
    assert main(["plot", str(path), "--model", "musicnn-msd", "--segments", "--saliency", "-o", str(out)]) == 0
    w, h = _png_size(out)
    assert w == 1320 and h > 1100  # the timeline panel is added


def test_without_matplotlib_a_clear_error(write_audio, tmp_path, monkeypatch, capsys):
    real_import = builtins.__import__

    def no_mpl(name, *a, **kw):
        if name.startswith("matplotlib"):
            raise ImportError("no matplotlib")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_mpl)
    assert main(["plot", str(write_audio("c.wav")), "-o", str(tmp_path / "c.png")]) == 2
    err = capsys.readouterr().err
    assert "needs matplotlib" in err and "pip install" in err and "\n" not in err.strip()
