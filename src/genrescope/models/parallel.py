"""Parallel CNN-RNN: a 2-D conv branch and a recurrent branch read the same spectrogram.

Two published recipes are presets of one class:

* ``parallel-cnn-bigru`` (log-mel): 5 Conv2D + MaxPool blocks -> 256, in parallel with
  a (time 4 x freq 2) max-pool of the spectrogram read by a bidirectional GRU of 64
  units each way -> 128; the two concatenated (384) into the classifier.
* ``parallel-cnn-bilstm`` (STFT): the same 5 conv blocks -> 256, in parallel with 2
  stacked bidirectional LSTMs (128 each way) over a (freq 8 x time 2) pooled STFT ->
  256; the two added, then the classifier.

Both presets use BatchNorm and dropout (0.1) in the conv blocks (without them the
5-block branch starts with vanishing activations and trains much more slowly) and an
input batch-norm over bins, which stands in for the dataset standardisation the
original recipes did in preprocessing.

The conv branch collapses time by a max over time steps, and the RNN branch keeps its
final hidden state, so both accept any input length of at least ``min_frames``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from genrescope.errors import GenrescopeError
from genrescope.models.layers import (CELLS, GenreModel, ModelConfig, RnnSummary, SpectrogramEncoder, check_choice,
                                      classifier, input_norm)


@dataclass(frozen=True)
class ParallelConfig(ModelConfig):
    """Hyper-parameters of :class:`ParallelCnnRnn` (defaults: ``parallel-cnn-bigru``).

    cnn_pool and rnn_pool are (freq, time) max-pool sizes; merge is ``"concat"`` or
    ``"add"`` (which needs ``cnn_dim == rnn output size``).
    """

    cnn_channels: tuple[int, ...] = (16, 32, 64, 64, 64)
    cnn_pool: tuple[int, int] = (2, 2)
    cnn_dim: int = 256
    batch_norm: bool = True
    conv_dropout: float = 0.1
    input_bn: bool = True
    cell: str = "gru"
    rnn_hidden: int = 64
    rnn_layers: int = 1
    rnn_pool: tuple[int, int] = (2, 4)
    rnn_dropout: float = 0.0
    merge: str = "concat"
    dropout: float = 0.5

    def validate(self) -> None:
        check_choice(self, "cell", CELLS)
        check_choice(self, "merge", ("concat", "add"))
        if self.merge == "add" and self.cnn_dim != 2 * self.rnn_hidden:
            raise GenrescopeError(f"ParallelConfig: merge='add' needs cnn_dim == 2 * rnn_hidden, "
                                  f"got {self.cnn_dim} and {self.rnn_hidden}")
        if self.n_bins < max(self.cnn_pool[0] ** len(self.cnn_channels), self.rnn_pool[0]):
            raise GenrescopeError(f"ParallelConfig: n_bins={self.n_bins} is too few for the frequency pooling")


class ParallelCnnRnn(GenreModel):
    """Conv branch and bidirectional RNN branch side by side; (B, n_bins, T) -> (B, n_classes)."""

    Config = ParallelConfig

    def __init__(self, config: ParallelConfig):
        super().__init__(config)
        c = config
        self.input_norm = input_norm(c.n_bins, c.input_bn)
        self.cnn = SpectrogramEncoder(c.n_bins, c.cnn_channels, c.cnn_dim, pool=c.cnn_pool, batch_norm=c.batch_norm,
                                      dropout=c.conv_dropout, time_pool="max")
        self.rnn_pool = nn.MaxPool2d(c.rnn_pool)
        self.rnn = RnnSummary(c.n_bins // c.rnn_pool[0], c.rnn_hidden, cell=c.cell, layers=c.rnn_layers,
                              bidirectional=True, dropout=c.rnn_dropout)
        merged = c.cnn_dim if c.merge == "add" else c.cnn_dim + self.rnn.out_dim
        self.head = classifier(merged, c.n_classes, dropout=c.dropout)

    @property
    def min_frames(self) -> int:
        return max(self.cnn.time_stride, self.config.rnn_pool[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_norm(x)  # (B, n_bins, T)
        a = self.cnn(x)  # (B, cnn_dim)
        s = self.rnn_pool(x.unsqueeze(1)).squeeze(1)  # (B, n_bins / pf, T / pt)
        b = self.rnn(s.transpose(1, 2))  # (B, 2 * rnn_hidden)
        h = a + b if self.config.merge == "add" else torch.cat([a, b], dim=1)
        return self.head(h)  # (B, n_classes)


MODELS = {
    "parallel-cnn-bigru": (ParallelCnnRnn, {}),
    "parallel-cnn-bilstm": (ParallelCnnRnn, dict(
        kind="stft", cell="lstm", rnn_hidden=128, rnn_layers=2,
        rnn_pool=(8, 2), rnn_dropout=0.1, merge="add", dropout=0.3)),
}
