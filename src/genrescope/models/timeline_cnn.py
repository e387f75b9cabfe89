"""A fully convolutional network over time that says what it hears every few hundred ms.

Three blocks of Conv1D(256, k=5) + BatchNorm + ReLU + MaxPool(2) read the spectrogram
as a sequence of frames (bins as channels); a 1x1 conv turns each remaining time step
into class logits. One pass over a whole song gives ``forward_frames`` -> (B, T/8, G),
one distribution every ``8 * hop_length / sr`` seconds (186 ms at 22050 Hz, hop 512).

Training goes through ``forward``, the mean over time of the frame *logits* (not of the
probabilities): since the 1x1 classifier is linear, that is the classifier applied to
the mean-pooled features (a global-average-pooling CNN), and ``softmax`` of it is the
normalised geometric mean of the frame distributions.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from genrescope.models.layers import GenreModel, ModelConfig, conv_stack, input_norm


@dataclass(frozen=True)
class TimelineConfig(ModelConfig):
    """Hyper-parameters of :class:`TimelineCnn`; ``window_s=None``: it reads whole songs."""

    window_s: float | None = None
    channels: int = 256
    n_blocks: int = 3
    kernel: int = 5
    pool: int = 2
    input_bn: bool = True
    dropout: float = 0.3


class TimelineCnn(GenreModel):
    """(B, n_bins, T) -> frame logits (B, T // 8, G); ``forward`` -> (B, G)."""

    Config = TimelineConfig

    def __init__(self, config: TimelineConfig):
        super().__init__(config)
        c = config
        self.input_norm = input_norm(c.n_bins, c.input_bn)
        self.convs = conv_stack(c.n_bins, (c.channels,) * c.n_blocks, pool=c.pool, kernel=c.kernel, dims=1)
        self.dropout = nn.Dropout(c.dropout)
        self.frame_head = nn.Conv1d(c.channels, c.n_classes, 1)

    @property
    def frame_stride(self) -> int:
        """Input frames per output frame."""
        return self.config.pool ** self.config.n_blocks

    @property
    def min_frames(self) -> int:
        return self.frame_stride

    def forward_frames(self, x: torch.Tensor) -> torch.Tensor:
        h = self.convs(self.input_norm(x))  # (B, channels, T')
        return self.frame_head(self.dropout(h)).transpose(1, 2)  # (B, T', n_classes)

    @staticmethod
    def pool_frames(frame_logits: torch.Tensor) -> torch.Tensor:
        """Clip logits from frame logits (B, T', G) -> (B, G): the mean of the logits."""
        return frame_logits.mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool_frames(self.forward_frames(x))  # (B, n_classes)


MODELS = {"timeline-cnn": (TimelineCnn, {})}
