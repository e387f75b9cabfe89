"""Protocol Buffers' wire format, read without the protobuf package: ONNX graphs
(:mod:`genrescope.inference.onnx_weights`) and TensorFlow checkpoints (``tools/convert_musicnn.py``)
are walked with these two functions."""
from __future__ import annotations


def read_varint(buf, pos: int) -> tuple[int, int]:
    """(value, next position) of the base-128 varint at ``buf[pos]`` (protobuf, LevelDB tables)."""
    out = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        out |= (b & 0x7F) << shift
        if b < 0x80:
            return out, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def protobuf_fields(buf, start: int = 0, end: int | None = None):
    """``(field, wire_type, value)`` of one protobuf message; length-delimited and fixed-size values
    as slices of ``buf`` (memoryviews of a memoryview, bytes of bytes). ValueError where the
    message does not parse."""
    pos, end = start, len(buf) if end is None else end
    while pos < end:
        key, pos = read_varint(buf, pos)
        wire = key & 7
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire in (1, 5):
            n = 8 if wire == 1 else 4
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 2:
            n, pos = read_varint(buf, pos)
            value, pos = buf[pos:pos + n], pos + n
        else:
            raise ValueError(f"wire type {wire}")
        if pos > end:
            raise ValueError("truncated message")
        yield key >> 3, wire, value
