"""A learnt head as a small ONNX graph, written without the ``onnx`` package.

The plain install has ONNX Runtime but not ``onnx``, and a head is a handful of operators,
so this module writes the protobuf itself (the mirror of the reader
:func:`genrescope.inference.backends.protobuf_fields`). Two graph shapes, both
``features`` (N, F) float32 -> ``probabilities`` (N, G), softmax inside:

* ``linear``: ``softmax(x W + b)`` (standardisation and temperature folded into W, b);
* ``rbf``: ``softmax(exp(-gamma * |z - L_j|^2) W + b)`` over landmarks ``L`` with
  ``z = (x - mean) * inv_scale``; the squared distance is ``|z|^2 - 2 z L^T + |L|^2``.

Field numbers are those of ``onnx.proto`` (ModelProto, GraphProto, NodeProto, TensorProto,
ValueInfoProto, AttributeProto); opset 13, IR version 8.
"""
from __future__ import annotations

import struct

import numpy as np

OPSET = 13
IR_VERSION = 8
_FLOAT = 1  # TensorProto.FLOAT and AttributeProto.FLOAT
_INT = 2  # AttributeProto.INT


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int64 as two's complement, as protobuf writes them
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _int(field: int, n: int) -> bytes:
    return _key(field, 0) + _varint(n)


def _bytes(field: int, data: bytes | str) -> bytes:
    data = data.encode() if isinstance(data, str) else data
    return _key(field, 2) + _varint(len(data)) + data


def _tensor(name: str, a: np.ndarray) -> bytes:
    a = np.ascontiguousarray(a, dtype="<f4")
    return b"".join(_int(1, d) for d in a.shape) + _int(2, _FLOAT) + _bytes(8, name) + _bytes(9, a.tobytes())


def _value_info(name: str, dims: list[int | str]) -> bytes:
    shape = b"".join(_bytes(1, _int(1, d) if isinstance(d, int) else _bytes(2, d)) for d in dims)
    tensor_type = _int(1, _FLOAT) + _bytes(2, shape)
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor_type))


def _attr(name: str, value: int | float) -> bytes:
    if isinstance(value, int):
        return _bytes(1, name) + _int(3, value) + _int(20, _INT)
    return _bytes(1, name) + _key(2, 5) + struct.pack("<f", value) + _int(20, _FLOAT)


def _node(op: str, inputs: list[str], outputs: list[str], **attrs) -> bytes:
    body = b"".join(_bytes(1, i) for i in inputs) + b"".join(_bytes(2, o) for o in outputs)
    body += _bytes(3, f"{op}_{outputs[0]}") + _bytes(4, op)
    return body + b"".join(_bytes(5, _attr(k, v)) for k, v in attrs.items())


def _model(nodes: list[bytes], weights: dict[str, np.ndarray], n_in: int, n_out: int,
           metadata: dict[str, str]) -> bytes:
    graph = b"".join(_bytes(1, n) for n in nodes) + _bytes(2, "head")
    graph += b"".join(_bytes(5, _tensor(k, v)) for k, v in weights.items())
    graph += _bytes(11, _value_info("features", ["N", n_in])) + _bytes(12, _value_info("probabilities", ["N", n_out]))
    model = _int(1, IR_VERSION) + _bytes(2, "genrescope") + _bytes(7, graph)
    model += _bytes(8, _bytes(1, "") + _int(2, OPSET))
    return model + b"".join(_bytes(14, _bytes(1, k) + _bytes(2, v)) for k, v in metadata.items())


def linear_graph(weight: np.ndarray, bias: np.ndarray, metadata: dict[str, str]) -> bytes:
    """``softmax(x @ weight + bias)``: weight (F, G), bias (G,) -> the ONNX model's bytes."""
    nodes = [_node("MatMul", ["features", "W"], ["xw"]), _node("Add", ["xw", "b"], ["logits"]),
             _node("Softmax", ["logits"], ["probabilities"], axis=-1)]
    return _model(nodes, {"W": weight, "b": bias}, weight.shape[0], weight.shape[1], metadata)


def rbf_graph(mean: np.ndarray, inv_scale: np.ndarray, landmarks: np.ndarray, gamma: float,
              weight: np.ndarray, bias: np.ndarray, metadata: dict[str, str]) -> bytes:
    """The RBF head (module docstring): mean, inv_scale (F,), landmarks (L, F), weight (L, G), bias (G,)."""
    lm = np.asarray(landmarks, np.float64)
    weights = {"mu": mean, "inv": inv_scale, "ones": np.ones((lm.shape[1], 1)), "m2Lt": -2.0 * lm.T,
               "LL": (lm ** 2).sum(axis=1)[None, :], "neg_gamma": np.array([-gamma]), "W": weight, "b": bias}
    nodes = [_node("Sub", ["features", "mu"], ["c"]), _node("Mul", ["c", "inv"], ["z"]),
             _node("Mul", ["z", "z"], ["z2"]), _node("MatMul", ["z2", "ones"], ["zz"]),  # (N, 1)
             _node("MatMul", ["z", "m2Lt"], ["zl"]), _node("Add", ["zl", "zz"], ["d1"]),
             _node("Add", ["d1", "LL"], ["d2"]), _node("Relu", ["d2"], ["d"]),  # rounding never goes below 0
             _node("Mul", ["d", "neg_gamma"], ["e"]), _node("Exp", ["e"], ["k"]),
             _node("MatMul", ["k", "W"], ["kw"]), _node("Add", ["kw", "b"], ["logits"]),
             _node("Softmax", ["logits"], ["probabilities"], axis=-1)]
    return _model(nodes, weights, lm.shape[1], weight.shape[1], metadata)
