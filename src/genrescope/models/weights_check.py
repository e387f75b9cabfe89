"""Checks of a checkpoint's weights before they are trusted: names and shapes against the
model its metadata describes (built on PyTorch's meta device, so a config describing a
256 GiB layer costs nothing), and finiteness. A checkpoint is a file like any other.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from genrescope.errors import CheckpointError, GenrescopeError

if TYPE_CHECKING:  # pragma: no cover
    import torch


def check_state_dict(state: dict[str, "torch.Tensor"], expected: dict[str, "torch.Tensor"], *, where: str) -> None:
    """Raise CheckpointError unless ``state`` has exactly the names and shapes (and, where both
    sides have one, dtypes) of ``expected``; then check that real tensors are finite."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))

    def differs(a, b) -> bool:
        da, db = getattr(a, "dtype", None), getattr(b, "dtype", None)
        return tuple(a.shape) != tuple(b.shape) or (da is not None and db is not None and da != db)

    wrong = [f"{k}: {tuple(state[k].shape)} {getattr(state[k], 'dtype', '')} in file, "
             f"{tuple(v.shape)} {getattr(v, 'dtype', '')} in model"
             for k, v in expected.items() if k in state and differs(state[k], v)]
    problems = ([f"missing tensors {missing}"] if missing else []) + \
        ([f"unexpected tensors {unexpected}"] if unexpected else []) + \
        ([f"shape mismatch: {'; '.join(wrong)}"] if wrong else [])
    if problems:
        raise CheckpointError(f"{where}: weights do not fit the model described in the checkpoint: "
                              f"{'; '.join(problems)}")
    if not all(isinstance(v, _Shape) for v in state.values()):
        check_finite(state, where=where)


class _Shape:
    """A tensor's shape alone, for :func:`check_state_dict`."""

    def __init__(self, shape) -> None:
        self.shape = tuple(int(x) for x in shape)


def header_shapes(header: dict[str, Any], path) -> dict[str, _Shape]:
    try:
        return {k: _Shape(v["shape"]) for k, v in header.items() if k != "__metadata__"}
    except (TypeError, KeyError, ValueError) as e:
        raise CheckpointError(f"{path}: corrupt checkpoint header (bad tensor shape)") from e


def meta_shapes(name: str, config: Any, path) -> dict[str, _Shape]:
    """The state-dict shapes of the model ``config`` describes, built on the meta device (no memory)."""
    import warnings

    import torch

    from genrescope.models import build_model

    try:
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.simplefilter("ignore")  # copying real weights into meta tensors warns, harmlessly
            model = build_model(name, config)
    except GenrescopeError as e:
        raise CheckpointError(f"{path}: cannot rebuild the model: {e}") from e
    return {k: _Shape(v.shape) for k, v in model.state_dict().items()}


def check_finite(state: dict[str, "torch.Tensor"], *, where: str) -> None:
    """Raise CheckpointError if a floating-point tensor holds NaN or infinity."""
    import torch

    bad = sorted(k for k, t in state.items() if t.is_floating_point() and not bool(torch.isfinite(t).all()))
    if bad:
        raise CheckpointError(f"{where}: non-finite weights (NaN or infinity) in {', '.join(bad[:5])}"
                              f"{' ...' if len(bad) > 5 else ''}")
