"""A pretrained backbone (a shipped tagger as a feature extractor) and a head behind it.

A backbone is a shipped tagger whose ONNX export also returns ``embeddings`` (the
penultimate layer, one vector per window). At prediction time a head trained on those
embeddings (:mod:`genrescope.training.embed`) runs behind the backbone: the log-mel
windows go through the backbone's ONNX graph, then the head's.
"""
from __future__ import annotations

import numpy as np

from genrescope.errors import CheckpointError

EMBEDDINGS_OUTPUT = "embeddings"


class Backbone:
    """A shipped model used as a feature extractor: (N, n_mels, T) windows -> (N, D)."""

    def __init__(self, name: str, threads: int | None = None):
        from genrescope.inference.onnx_model import OnnxModel
        from genrescope.inference.registry import resolve_model_path

        self.name = name
        _, path = resolve_model_path(name)
        self.model = OnnxModel(path, threads=threads)
        if EMBEDDINGS_OUTPUT not in self.model.outputs:
            raise CheckpointError(f"{name}: its ONNX export has no '{EMBEDDINGS_OUTPUT}' output, so it cannot "
                                  f"serve as a backbone")
        self.feature_config = self.model.feature_config
        self.window_frames = self.model.window_frames

    @property
    def dim(self) -> int:
        x = np.zeros((1, self.model.n_bins, self.window_frames), np.float32)
        return int(self.embed_windows(x).shape[1])

    def embed_windows(self, windows: np.ndarray, batch_size: int = 1) -> np.ndarray:
        """(N, n_mels, T) log-mel windows -> (N, D) float32 embeddings."""
        out = [self.model.run(windows[i:i + batch_size])[EMBEDDINGS_OUTPUT] for i in range(0, len(windows), batch_size)]
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)

    def embed_features(self, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Whole-song log-mel (n_mels, n_frames) -> window embeddings (N, D), start_s, end_s."""
        from genrescope.features.windows import slice_windows

        windows, start, end = slice_windows(feats, self.feature_config, win_frames=self.window_frames)
        return self.embed_windows(windows), start, end


def head_inference_model(name: str, head, backbone_name: str):
    """Compose a backbone and a trained head (an InferenceModel on table rows) into one model
    that reads log-mel windows like the backbone."""
    from genrescope.inference.model import InferenceModel

    backbone = Backbone(backbone_name)

    def run(x: np.ndarray) -> np.ndarray:
        return head.predict_windows(backbone.embed_windows(x))

    return InferenceModel(name, head.labels, backbone.feature_config, "log_mel", backbone.window_frames,
                          head.multi_label, run, f"{backbone_name} + {head.source}", head.runtime)
