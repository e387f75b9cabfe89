"""Shipped ensembles: members that read the same windows, outputs merged by label."""
from __future__ import annotations

import numpy as np

from genrescope.errors import CheckpointError
from genrescope.inference.model import InferenceModel


def ensemble(name: str, members: list[InferenceModel]) -> InferenceModel:
    """Members that read the same features, run on the same windows, outputs merged by label."""
    first = members[0]
    for m in members[1:]:
        if (m.feature_config, m.kind, m.window_frames) != (first.feature_config, first.kind, first.window_frames):
            raise CheckpointError(f"ensemble {name}: {m.name} reads different features from {first.name}")
    labels: list[str] = []
    for m in members:
        labels += [lab for lab in m.labels if lab not in labels]
    # columns[i][j]: where member i's label j lands; counts: how many members feed each label
    columns = [np.array([labels.index(lab) for lab in m.labels]) for m in members]
    counts = np.zeros(len(labels))
    for c in columns:
        counts[c] += 1

    def run(x: np.ndarray) -> np.ndarray:
        out = np.zeros((len(x), len(labels)), np.float64)
        for m, c in zip(members, columns):
            out[:, c] += m.predict_windows(x)
        return (out / counts).astype(np.float32)

    return InferenceModel(name, labels, first.feature_config, first.kind, first.window_frames,
                          all(m.multi_label for m in members), run,
                          " + ".join(m.source for m in members), first.runtime)
