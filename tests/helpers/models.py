"""Small models of every family for the model, checkpoint and export tests: a tiny front end
(1 s windows of 62 frames), builders, random batches and real features of generated music."""
from __future__ import annotations

import numpy as np
import torch

from genrescope.config import FeatureConfig
from genrescope.features import spectrogram as features
from genrescope.features.windows import slice_windows
from genrescope.models import build_model
from genrescope.testing import synth_music

#: A small front end so every test runs in milliseconds: 1 s windows of 62 frames.
FC = FeatureConfig(sr=8000, n_fft=256, hop_length=128, n_mels=32, n_mfcc=13, window_s=1.0, window_hop_s=0.5)
N_CLASSES = 4
T = FC.window_frames


def make(name, seed=0, **kw):
    return build_model(name, feature_config=FC, n_classes=N_CLASSES, seed=seed, **kw)


def batch(model, t=T, b=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    shape = (b, model.config.n_bins) if model.config.kind == "table" else (b, model.config.n_bins, t)
    return torch.randn(*shape, generator=g)


def feature_inputs(model, seed=2):
    """Real features of a generated chord + noise: 1 s windows (N, n_bins, 62) and the whole
    2.5 s clip (1, n_bins, 158); table models get GTZAN-like rows of very different scales."""
    cfg = model.config
    if cfg.kind == "table":
        rng = np.random.default_rng(seed)
        return [(rng.normal(1, 0.3, (4, cfg.n_bins)) * np.logspace(-3, 4, cfg.n_bins)).astype(np.float32)]
    feats = features.compute(synth_music(2.5, FC.sr, seed=seed), FC, cfg.kind)
    windows, _, _ = slice_windows(feats, FC)
    return [windows, feats[None]]


#: The labels of the checkpoint and export tests' models.
LABELS = ["blues", "jazz", "metal", "pop"]


def trained_like(name):
    """A model whose BatchNorm statistics (and MLP standardisation) fit the features of
    :func:`feature_inputs`, as after training, so its outputs are not saturated."""
    model = make(name, seed=3)
    x = torch.from_numpy(np.concatenate(feature_inputs(model, seed=4)[:1]))
    if name == "features-mlp":
        model.set_standardization(x.mean(0), x.std(0))
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.momentum = None  # a plain average over the calibration pass
    model.train()
    with torch.no_grad():
        model(x)
    for m in bns:
        m.momentum = 0.1
    return model.eval()
