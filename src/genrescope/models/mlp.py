"""An MLP on the 57-column GTZAN feature table (one row of summary statistics per window).

The standardisation (column mean and std of the training set) is stored in the model as
buffers, so a checkpoint or ONNX file carries it and raw table rows go straight in.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from genrescope.features.gtzan_table import GTZAN_TABLE_FEATURES
from genrescope.errors import GenrescopeError
from genrescope.models.layers import GenreModel, ModelConfig, classifier

#: Columns of the GTZAN ``features_3_sec.csv`` table without filename, length and label.
TABLE_COLUMNS = 57


@dataclass(frozen=True)
class MlpConfig(ModelConfig):
    """Hyper-parameters of :class:`FeaturesMlp`; ``n_bins`` is the number of table columns."""

    kind: str = "table"
    n_bins: int = TABLE_COLUMNS
    hidden: tuple[int, ...] = (512, 256, 64)
    dropout: float = 0.3

    def validate(self) -> None:
        if self.kind != "table":
            raise GenrescopeError(f"MlpConfig: kind must be 'table', got {self.kind!r}")


class FeaturesMlp(GenreModel):
    """(B, n_columns) raw table rows -> standardise -> MLP -> (B, n_classes)."""

    Config = MlpConfig
    variable_length = False

    def __init__(self, config: MlpConfig):
        super().__init__(config)
        c = config
        self.register_buffer("mean", torch.zeros(c.n_bins))
        self.register_buffer("std", torch.ones(c.n_bins))
        layers: list[nn.Module] = []
        for i, o in zip((c.n_bins,) + c.hidden[:-1], c.hidden):
            layers += [nn.Linear(i, o), nn.ReLU(inplace=True), nn.Dropout(c.dropout)]
        self.body = nn.Sequential(*layers)
        self.head = classifier(c.hidden[-1] if c.hidden else c.n_bins, c.n_classes)

    def set_standardization(self, mean: np.ndarray | torch.Tensor, std: np.ndarray | torch.Tensor,
                            *, eps: float = 1e-8) -> None:
        """Store the training set's column mean and std, each shape (n_columns,)."""
        mean = torch.as_tensor(np.asarray(mean), dtype=torch.float32)
        std = torch.as_tensor(np.asarray(std), dtype=torch.float32)
        if mean.shape != self.mean.shape or std.shape != self.std.shape:
            raise GenrescopeError(f"set_standardization: expected shapes {tuple(self.mean.shape)}, "
                                  f"got {tuple(mean.shape)} and {tuple(std.shape)}")
        self.mean.copy_(mean)
        self.std.copy_(std.clamp_min(eps))  # a constant column must not divide by zero

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.mean) / self.std  # (B, n_columns)
        return self.head(self.body(z))  # (B, n_classes)


#: The table is computed over 30 s (GTZAN's excerpt length); served every 15 s along a song.
FEATURES = {"features-mlp": GTZAN_TABLE_FEATURES.replace(window_hop_s=15.0)}

MODELS = {"features-mlp": (FeaturesMlp, {})}
