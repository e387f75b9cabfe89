"""Ensembles run member by member: members that read the same windows, outputs merged by label.

The shipped ensemble ships as one graph (training/fused_export.py, which merges by label with
:class:`LabelMerge`), so this runs only for its PyTorch members (``--runtime torch``) or for a
backbone's per-tagger blocks. With ``parallel=True`` the members run side by side, one thread
each, on the same batch.
"""
from __future__ import annotations

import threading

import numpy as np

from genrescope.errors import CheckpointError
from genrescope.inference.inference_model import InferenceModel


def ensemble(name: str, members: list[InferenceModel], *, parallel: bool = False) -> InferenceModel:
    """Members that read the same features, run on the same windows, outputs merged by label.

    Parameters
    ----------
    name : str
        The ensemble's name.
    members : list of InferenceModel
        Models with the same feature config, input kind and window length.
    parallel : bool
        Run the members concurrently, one thread each (give each member its share of the
        cores as its own thread count).
    """
    first = members[0]
    for m in members[1:]:
        if (m.feature_config, m.kind, m.window_frames) != (first.feature_config, first.kind, first.window_frames):
            raise CheckpointError(f"ensemble {name}: {m.name} reads different features from {first.name}")
    merge = LabelMerge([m.labels for m in members])
    each = _concurrently if parallel and len(members) > 1 else _one_after_another

    def run(x: np.ndarray) -> np.ndarray:
        return merge(each([m.predict_windows for m in members], x))

    precision = "bf16" if any(m.precision == "bf16" for m in members) else "fp32"
    return InferenceModel(name, merge.labels, first.feature_config, first.kind, first.window_frames,
                          all(m.multi_label for m in members), run,
                          " + ".join(m.source for m in members), first.runtime,
                          backend=first.backend, precision=precision)


class LabelMerge:
    """Several models' probabilities merged by label: the union of their labels (first seen
    first), and a label that several models know gets the mean of their probabilities."""

    def __init__(self, label_lists: list[list[str]]):
        self.labels: list[str] = []
        for labels in label_lists:
            self.labels += [lab for lab in labels if lab not in self.labels]
        # columns[i][j]: where model i's label j lands; counts: how many models feed each label
        self.columns = [np.array([self.labels.index(lab) for lab in labels]) for labels in label_lists]
        self.counts = np.zeros(len(self.labels))
        for c in self.columns:
            self.counts[c] += 1

    def __call__(self, probs: list[np.ndarray]) -> np.ndarray:
        """One (N, G_i) array per model -> (N, len(labels)) float32."""
        out = np.zeros((len(probs[0]), len(self.labels)), np.float64)
        for c, p in zip(self.columns, probs):
            out[:, c] += p
        return (out / self.counts).astype(np.float32)


def share_threads(threads: int | None, n_members: int) -> tuple[int | None, bool]:
    """(threads of each member, side by side?) for ``n_members`` models run on one batch.

    No thread count (None): every core, shared out among the members, which run side by
    side. A number: each member gets that many, one after the other.
    """
    import os

    cores = os.cpu_count() or 1
    if threads is None and 1 < n_members <= cores:
        return cores // n_members, True
    return threads, False


def run_members(fns, x: np.ndarray, side_by_side: bool) -> list[np.ndarray]:
    """``[f(x) for f in fns]``, side by side in threads or one after the other."""
    return _concurrently(fns, x) if side_by_side and len(fns) > 1 else _one_after_another(fns, x)


def _one_after_another(fns, x: np.ndarray) -> list[np.ndarray]:
    return [f(x) for f in fns]


def _concurrently(fns, x: np.ndarray) -> list[np.ndarray]:
    """``[f(x) for f in fns]``, the first in this thread and the others in their own.

    A thread per call costs about 0.1 ms against the ~10 ms of a window through a tagger;
    both runtimes release the GIL while they compute.
    """
    out: list = [None] * len(fns)
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            out[i] = fns[i](x)
        except BaseException as e:  # re-raised in the caller's thread below
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(1, len(fns))]
    for t in threads:
        t.start()
    one(0)
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return out
