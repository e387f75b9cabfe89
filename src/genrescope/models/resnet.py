"""Short-chunk ResNet (Won et al. 2020, "Evaluation of CNN-based automatic music tagging
models"): the strongest from-scratch tagger of that comparison, on 3-4 s log-mel chunks.

Input batch-norm (one per mel band, so each band is standardised with statistics
learned from the training data), seven stride-2 residual blocks, a max over what is
left of frequency and time, then a dense layer with BatchNorm and dropout before the
classifier. SpecAugment and mixup, which this recipe is trained with, live in the
training loop.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from genrescope.models.layers import GenreModel, ModelConfig, ResBlock2d, classifier, input_norm


@dataclass(frozen=True)
class ResNetChunkConfig(ModelConfig):
    """Hyper-parameters of :class:`ResNetChunk` (Won et al. use widths 128..512)."""

    channels: tuple[int, ...] = (64, 64, 128, 128, 128, 128, 256)
    dense: int = 256
    dropout: float = 0.5


class ResNetChunk(GenreModel):
    """(B, n_mels, T) -> (B, n_classes); any T >= 1 (strided convs pad)."""

    Config = ResNetChunkConfig

    def __init__(self, config: ResNetChunkConfig):
        super().__init__(config)
        c = config
        self.input_norm = input_norm(c.n_bins)
        ins = (1,) + tuple(c.channels[:-1])
        self.blocks = nn.Sequential(*[ResBlock2d(i, o, stride=2) for i, o in zip(ins, c.channels)])
        self.dense = nn.Sequential(nn.Linear(c.channels[-1], c.dense, bias=False), nn.BatchNorm1d(c.dense),
                                   nn.ReLU(inplace=True))
        self.head = classifier(c.dense, c.n_classes, dropout=c.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.input_norm(x).unsqueeze(1))  # (B, C, F', T')
        h = h.amax(dim=(2, 3))  # (B, C)
        return self.head(self.dense(h))  # (B, n_classes)


MODELS = {"resnet-chunk": (ResNetChunk, {})}
