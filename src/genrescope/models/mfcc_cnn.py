"""A small CNN on MFCC sequences of 3 s windows: the classic GTZAN tutorial network
(three conv blocks, a dense layer, dropout), with the fixed-size flatten replaced by a
mean over time so any window length works.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from genrescope.errors import GenrescopeError
from genrescope.models.layers import GenreModel, ModelConfig, SpectrogramEncoder, classifier, input_norm


@dataclass(frozen=True)
class MfccCnnConfig(ModelConfig):
    """Hyper-parameters of :class:`MfccCnn`; ``pool`` is the (freq, time) max-pool of each block."""

    kind: str = "mfcc"
    n_bins: int = 20
    channels: tuple[int, ...] = (32, 32, 64)
    pool: tuple[int, int] = (2, 2)
    input_bn: bool = True
    dense: int = 64
    dropout: float = 0.3

    def validate(self) -> None:
        if self.n_bins < self.pool[0] ** len(self.channels):
            raise GenrescopeError(f"MfccCnnConfig: n_bins={self.n_bins} is too few for {len(self.channels)} pools")


class MfccCnn(GenreModel):
    """(B, n_mfcc, T) -> (B, n_classes)."""

    Config = MfccCnnConfig

    def __init__(self, config: MfccCnnConfig):
        super().__init__(config)
        c = config
        self.input_norm = input_norm(c.n_bins, c.input_bn)
        self.encoder = SpectrogramEncoder(c.n_bins, c.channels, c.dense, pool=c.pool, batch_norm=True,
                                          time_pool="mean")
        self.head = classifier(c.dense, c.n_classes, dropout=c.dropout)

    @property
    def min_frames(self) -> int:
        return self.encoder.time_stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.input_norm(x)))  # (B, dense) -> (B, n_classes)


MODELS = {"mfcc-cnn": (MfccCnn, {})}
