"""Convolutional-recurrent network: a short conv front end, a dense layer per time step,
then an LSTM or GRU that reads the sequence and keeps its final state.

``cnn-lstm`` and ``cnn-gru`` are the same class with a different ``cell``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from genrescope.errors import GenrescopeError
from genrescope.models.layers import (CELLS, GenreModel, ModelConfig, RnnSummary, SpectrogramEncoder, check_choice,
                                      classifier, input_norm)


@dataclass(frozen=True)
class CrnnConfig(ModelConfig):
    """Hyper-parameters of :class:`CnnRnn`; ``pool`` is the (freq, time) max-pool of each block."""

    channels: tuple[int, ...] = (32, 64)
    pool: tuple[int, int] = (2, 2)
    batch_norm: bool = True
    input_bn: bool = True
    dense: int = 128
    cell: str = "lstm"
    rnn_hidden: int = 128
    rnn_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.3

    def validate(self) -> None:
        check_choice(self, "cell", CELLS)
        if self.n_bins < self.pool[0] ** len(self.channels):
            raise GenrescopeError(f"CrnnConfig: n_bins={self.n_bins} is too few for {len(self.channels)} pools")


class CnnRnn(GenreModel):
    """Conv blocks -> dense per step -> RNN -> classifier; (B, n_bins, T) -> (B, n_classes)."""

    Config = CrnnConfig

    def __init__(self, config: CrnnConfig):
        super().__init__(config)
        c = config
        self.input_norm = input_norm(c.n_bins, c.input_bn)
        self.encoder = SpectrogramEncoder(c.n_bins, c.channels, c.dense, pool=c.pool, batch_norm=c.batch_norm,
                                          time_pool=None)
        self.rnn = RnnSummary(c.dense, c.rnn_hidden, cell=c.cell, layers=c.rnn_layers,
                              bidirectional=c.bidirectional, dropout=c.dropout)
        self.head = classifier(self.rnn.out_dim, c.n_classes, dropout=c.dropout)

    @property
    def min_frames(self) -> int:
        return self.encoder.time_stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = self.encoder(self.input_norm(x))  # (B, dense, T')
        h = self.rnn(seq.transpose(1, 2))  # (B, rnn out)
        return self.head(h)  # (B, n_classes)


MODELS = {
    "cnn-lstm": (CnnRnn, {"cell": "lstm"}),
    "cnn-gru": (CnnRnn, {"cell": "gru"}),
}
