"""Building blocks shared by every model family, and the contract a model follows.

A genrescope model is an ``nn.Module`` built from one frozen config dataclass (a
subclass of :class:`ModelConfig`) that declares its input: the feature kind, the
number of feature bins and the window it is served on. It maps a batch
``(B, n_bins, T)`` float32 to logits ``(B, n_classes)``. Models that can say what they
hear at each moment also define ``forward_frames(x) -> (B, T', n_classes)`` logits,
``pool_frames`` (frame logits -> clip logits, what ``forward`` applies) and
``frame_stride`` (input frames per output frame). A model whose parts should learn at
different rates (a fine-tuned backbone under a new head) defines ``param_groups(lr)``,
which the training loop hands to the optimiser instead of ``parameters()``.

Loss, optimiser, augmentation (SpecAugment, mixup) and metrics are not here: they
belong to the training loop.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from genrescope.errors import GenrescopeError

#: Input kinds a model can declare: the three of ``features.compute`` and the GTZAN table.
INPUT_KINDS = ("log_mel", "mfcc", "stft", "table")
CELLS = ("gru", "lstm")


# ---------------------------------------------------------------- config base
@dataclass(frozen=True)
class ModelConfig:
    """What every model config declares.

    Parameters
    ----------
    n_classes : int
        Number of output classes (genres).
    kind : str
        Input feature kind: ``"log_mel"``, ``"mfcc"``, ``"stft"`` (see
        :func:`genrescope.features.spectrogram.compute`) or ``"table"`` (one row of summary features).
    n_bins : int
        Feature rows of one input, e.g. ``n_mels`` for log-mel.
    window_s : float or None
        Length in seconds of the windows the model is trained and served on (equal to
        the checkpoint's ``FeatureConfig.window_s``); None means the model takes a whole
        song in one pass.
    """

    n_classes: int = 10
    kind: str = "log_mel"
    n_bins: int = 128
    window_s: float | None = 3.0

    def __post_init__(self) -> None:
        name = type(self).__name__
        if self.n_classes < 1 or self.n_bins < 1:
            raise GenrescopeError(f"{name}: n_classes and n_bins must be >= 1, got {self.n_classes}, {self.n_bins}")
        if self.kind not in INPUT_KINDS:
            raise GenrescopeError(f"{name}: kind must be one of {INPUT_KINDS}, got {self.kind!r}")
        if self.window_s is not None and self.window_s <= 0:
            raise GenrescopeError(f"{name}: window_s must be > 0 or None, got {self.window_s}")
        self.validate()

    def validate(self) -> None:
        """Family-specific checks; raise GenrescopeError with a clear message."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        """Inverse of :meth:`to_dict`; JSON lists become the tuples the fields hold."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(d) - set(fields)
        if unknown:
            raise GenrescopeError(f"{cls.__name__}: unknown fields {sorted(unknown)} (written by a newer genrescope?)")
        hints = typing.get_type_hints(cls)
        kw = {k: tuple(v) if isinstance(v, list) and "tuple" in str(hints.get(k, "")) else v for k, v in d.items()}
        return cls(**kw)

    def replace(self, **changes: Any) -> "ModelConfig":
        return dataclasses.replace(self, **changes)


class GenreModel(nn.Module):
    """Base class: keeps the config and answers the questions exporters and loaders ask."""

    Config: ClassVar[type[ModelConfig]] = ModelConfig
    #: True when the time axis may change from call to call (global pooling, RNNs).
    variable_length: ClassVar[bool] = True

    def __init__(self, config: ModelConfig):
        super().__init__()
        if not isinstance(config, self.Config):
            raise GenrescopeError(f"{type(self).__name__} needs a {self.Config.__name__}, got {type(config).__name__}")
        self.config = config

    @property
    def min_frames(self) -> int:
        """Shortest input (in frames) the layers accept."""
        return 1

    def example_input(self, n_frames: int | None = None, batch: int = 2) -> torch.Tensor:
        """A random input of the right shape, for tracing and tests (leaves the global RNG alone)."""
        g = torch.Generator().manual_seed(0)
        if self.config.kind == "table":
            return torch.randn(batch, self.config.n_bins, generator=g)
        return torch.randn(batch, self.config.n_bins, n_frames or max(self.min_frames, 64), generator=g)


# ---------------------------------------------------------------- blocks
def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


class ConvBlock(nn.Module):
    """Conv (same padding) -> [BatchNorm] -> ReLU -> [MaxPool] -> [Dropout], 1-D or 2-D.

    With ``dims=2`` the input is (B, C, n_bins, T) and ``pool`` is (freq, time); with
    ``dims=1`` the input is (B, C, T).
    """

    def __init__(self, in_ch: int, out_ch: int, *, kernel: int = 3, pool: int | tuple[int, int] = 2,
                 batch_norm: bool = True, dropout: float = 0.0, dims: int = 2):
        super().__init__()
        conv, bn, mp = (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d) if dims == 2 else (nn.Conv1d, nn.BatchNorm1d,
                                                                                  nn.MaxPool1d)
        layers: list[nn.Module] = [conv(in_ch, out_ch, kernel, padding=kernel // 2, bias=not batch_norm)]
        if batch_norm:
            layers.append(bn(out_ch))
        layers.append(nn.ReLU(inplace=True))
        pool = _pair(pool) if dims == 2 else pool
        if pool not in (1, (1, 1)):
            layers.append(mp(pool))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


def conv_stack(in_ch: int, channels: tuple[int, ...], *, pool: tuple[int, int] = (2, 2), kernel: int = 3,
               batch_norm: bool = True, dropout: float = 0.0, dims: int = 2) -> nn.Sequential:
    """``len(channels)`` :class:`ConvBlock` s in a row, each pooling by ``pool``."""
    ins = (in_ch,) + tuple(channels[:-1])
    return nn.Sequential(*[ConvBlock(i, o, kernel=kernel, pool=pool, batch_norm=batch_norm, dropout=dropout, dims=dims)
                           for i, o in zip(ins, channels)])


class SpectrogramEncoder(nn.Module):
    """2-D conv stack over (n_bins, T), then a per-time-step projection of what is left of
    the frequency axis, then (optionally) pooling over time.

    Flattening the pooled frequency axis (rather than a fixed-size flatten of the whole
    map) keeps frequency position information while letting T vary.

    Output: (B, out_dim) if ``time_pool`` is ``"max"``/``"mean"``, else (B, out_dim, T').
    """

    def __init__(self, n_bins: int, channels: tuple[int, ...], out_dim: int, *, pool: tuple[int, int] = (2, 2),
                 batch_norm: bool = True, dropout: float = 0.0, time_pool: str | None = "max"):
        super().__init__()
        self.convs = conv_stack(1, channels, pool=pool, batch_norm=batch_norm, dropout=dropout)
        f_out = n_bins // pool[0] ** len(channels)
        if f_out < 1:
            raise GenrescopeError(f"{len(channels)} blocks pooling frequency by {pool[0]} need n_bins >= "
                                  f"{pool[0] ** len(channels)}, got {n_bins}")
        self.project = nn.Sequential(nn.Conv1d(channels[-1] * f_out, out_dim, 1), nn.ReLU(inplace=True))
        self.time_pool = time_pool
        self.time_stride = pool[1] ** len(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.convs(x.unsqueeze(1))  # (B, C, F', T')
        h = self.project(h.flatten(1, 2))  # (B, out_dim, T')
        if self.time_pool == "max":
            return h.amax(dim=-1)  # (B, out_dim)
        if self.time_pool == "mean":
            return h.mean(dim=-1)
        return h


class RnnSummary(nn.Module):
    """A GRU or LSTM over (B, T, D) that returns the last layer's final hidden state,
    both directions concatenated: (B, hidden * (2 if bidirectional else 1))."""

    def __init__(self, input_size: int, hidden: int, *, cell: str = "gru", layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0):
        super().__init__()
        if cell not in CELLS:
            raise GenrescopeError(f"cell must be one of {CELLS}, got {cell!r}")
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn(input_size, hidden, num_layers=layers, batch_first=True, bidirectional=bidirectional,
                       dropout=dropout if layers > 1 else 0.0)
        self.bidirectional = bidirectional
        self.out_dim = hidden * (2 if bidirectional else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h = self.rnn(x)
        h = h[0] if isinstance(h, tuple) else h  # LSTM: (h_n, c_n); h_n is (layers * dirs, B, H)
        if self.bidirectional:
            return torch.cat([h[-2], h[-1]], dim=1)  # (B, 2H)
        return h[-1]  # (B, H)


class ResBlock2d(nn.Module):
    """Residual block of the short-chunk ResNet (Won et al. 2020): two 3x3 convs with
    BatchNorm, a 1x1 projection on the skip path when shape changes, ReLU after the sum."""

    def __init__(self, in_ch: int, out_ch: int, *, stride: int = 2):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch))
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.skip = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


def input_norm(n_bins: int, enabled: bool = True) -> nn.Module:
    """BatchNorm over feature bins of a (B, n_bins, T) input, or the identity.

    It learns each bin's mean and spread from the training data and keeps them in the
    state dict, so raw features (e.g. dB values around -60) go straight in and the
    standardisation travels with the checkpoint, instead of living in a preprocessing
    step that serving could forget.
    """
    return nn.BatchNorm1d(n_bins) if enabled else nn.Identity()


def classifier(in_dim: int, n_classes: int, *, dropout: float = 0.0) -> nn.Sequential:
    """[Dropout] -> Linear: the output layer every family ends with."""
    layers: list[nn.Module] = [nn.Dropout(dropout)] if dropout > 0 else []
    return nn.Sequential(*layers, nn.Linear(in_dim, n_classes))


def check_choice(cfg: ModelConfig, field: str, choices: tuple) -> None:
    value = getattr(cfg, field)
    if value not in choices:
        raise GenrescopeError(f"{type(cfg).__name__}: {field} must be one of {choices}, got {value!r}")


__all__ = ["ModelConfig", "GenreModel", "ConvBlock", "conv_stack", "SpectrogramEncoder", "RnnSummary", "ResBlock2d",
           "classifier", "input_norm", "INPUT_KINDS", "CELLS"]
