"""NaN and infinity in an ONNX graph's weights, found without the ``onnx`` package.

Neither backend exposes a graph's weights and the plain install has no ``onnx`` package,
so the protobuf is walked here (:mod:`genrescope.inference.protobuf`).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from genrescope.errors import CheckpointError
from genrescope.inference.protobuf import protobuf_fields

#: TensorProto data types that hold floating point, as numpy reads their raw bytes (bfloat16: as uint16).
_FLOAT_TYPES = {1: "<f4", 10: "<f2", 11: "<f8", 16: "<u2"}


def check_finite_weights(path: str | os.PathLike) -> None:
    """Raise :class:`CheckpointError` if an initializer or ``Constant`` of the ONNX graph at
    ``path`` holds NaN or infinity.

    Neither backend exposes a graph's weights and the plain install has no ``onnx`` package,
    so the protobuf is walked here (wire format: graph = field 7 of the model, initializers
    field 5 and nodes field 1 of the graph). A file this walk cannot follow is left to the
    backend, which refuses what it cannot load; weights in external files are not read.
    """
    try:
        data = memoryview(Path(path).read_bytes())
        bad = [name for name, values in _graph_tensors(data) if not _finite(*values)]
    except OSError:
        return  # the backend says what is wrong with the file
    except (ValueError, IndexError):  # not a protobuf this walk understands
        return
    if bad:
        raise CheckpointError(f"{path}: non-finite weights (NaN or infinity) in {', '.join(bad[:5])}"
                              f"{' ...' if len(bad) > 5 else ''}")


def _graph_tensors(model: memoryview):
    """``(name, (dtype, [buffers]))`` of every float tensor among the graph's initializers and Constant nodes."""
    for field, wire, graph in protobuf_fields(model):
        if field != 7 or wire != 2:
            continue
        for gfield, gwire, item in protobuf_fields(graph):
            if gwire != 2:
                continue
            if gfield == 5:  # initializer
                yield from _tensor(item)
            elif gfield == 1:  # node: its attributes' tensors (field 5), a Constant's value
                for nfield, nwire, attr in protobuf_fields(item):
                    if nfield == 5 and nwire == 2:
                        for afield, awire, t in protobuf_fields(attr):
                            if afield in (5, 10) and awire == 2:  # t, tensors
                                yield from _tensor(t)


def _tensor(t: memoryview):
    name, dtype, parts = "", None, []
    for field, wire, value in protobuf_fields(t):
        if field == 8 and wire == 2:
            name = bytes(value).decode("utf-8", "replace")
        elif field == 2 and wire == 0:
            dtype = value
        elif field in (9, 4, 10) and wire in (2, 1, 5):  # raw_data, float_data, double_data (packed or not)
            parts.append((field, value))
    if dtype in _FLOAT_TYPES and parts:
        raw = [v for f, v in parts if f == 9]
        typed = [(np.dtype("<f4") if f == 4 else np.dtype("<f8"), v) for f, v in parts if f != 9]
        yield name, (_FLOAT_TYPES[dtype], raw, typed)


def _finite(dtype: str, raw: list, typed: list) -> bool:
    arrays = [np.frombuffer(v, dtype) for v in raw if len(v) % np.dtype(dtype).itemsize == 0]
    arrays += [np.frombuffer(v, dt) for dt, v in typed if len(v) % dt.itemsize == 0]
    for a in arrays:
        if dtype == "<u2" and a.dtype == np.uint16:  # bfloat16: all exponent bits set is NaN or infinity
            if ((a & 0x7F80) == 0x7F80).any():
                return False
        elif not np.isfinite(a).all():
            return False
    return True
