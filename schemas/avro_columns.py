"""Avro binary encoding of whole columns at once, with numpy and pyarrow.

Encoding events one dict at a time through fastavro costs a Python call per field per row,
which dominates publishing large uploads. Avro's binary encoding of a flat record is simply
the concatenation of each field's bytes, so every field can be encoded as a column: numpy
computes zigzag varints (lengths, longs, union indexes) for all rows at once, and pyarrow
joins the per-field pieces row by row in C++. No Python code runs per row.

For decoding, `container_file` frames bodies as an Avro object container file so that a
columnar reader can decode a whole batch in one call, and `well_formed` walks all bodies at
once to keep malformed ones away from that reader (which may read past a corrupt body).

Only the types the event contract needs are supported: ``string``, ``boolean``, ``long`` and
their ``["null", T]`` unions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from meterpipe.errors import SchemaError

__all__ = [
    "CONTAINER_SYNC",
    "container_file",
    "encode_long",
    "encode_records",
    "polars_schema",
    "well_formed",
]

# Any 16 bytes will do: a reader only compares the marker after each block with the header's.
CONTAINER_SYNC = b"meterpipe.batch."

_UInt64s = npt.NDArray[np.uint64]
_Int64s = npt.NDArray[np.int64]
_Int16s = npt.NDArray[np.int16]
_Bools = npt.NDArray[np.bool_]

_POLARS_DTYPES: dict[str, pl.DataType] = {
    "string": pl.String(),
    "boolean": pl.Boolean(),
    "long": pl.Int64(),
}


def encode_records(frame: pl.DataFrame, schema: Mapping[str, Any]) -> pa.LargeBinaryArray:
    """Encode each row of `frame` as the Avro binary body of record `schema`.

    `frame` has one column per field, named like the field: pl.String for strings,
    pl.Boolean for booleans, pl.Int64 for longs; nulls only in ``["null", T]`` fields.
    Other columns are ignored. Raises SchemaError if a column is missing or does not fit.
    """
    pieces: list[pa.Array] = []
    for field in schema["fields"]:
        kind, nullable = _field_kind(field)
        column = _checked_column(frame, field["name"], kind, nullable)
        pieces.extend(_encode_column(column, kind, nullable))
    separator = pa.scalar(b"", type=pa.large_binary())
    return pc.binary_join_element_wise(*pieces, separator, null_handling="skip")


def polars_schema(schema: Mapping[str, Any]) -> pl.Schema:
    """Return the frame schema `encode_records` expects for record `schema`."""
    return pl.Schema(
        {field["name"]: _POLARS_DTYPES[_field_kind(field)[0]] for field in schema["fields"]}
    )


def encode_long(value: int) -> bytes:
    """Return the Avro encoding of one long: its zigzag varint."""
    encoded: bytes = _varint_array(_zigzag(np.array([value], dtype=np.int64)))[0].as_py()
    return encoded


def container_file(schema_json: str, bodies: pa.LargeBinaryArray) -> bytes:
    """Return an uncompressed object container file holding `bodies` as its one block."""
    offsets, data = _layout(bodies)
    block = data.data[offsets[0] : offsets[-1]]
    parts: list[bytes | memoryview] = [
        b"Obj\x01",
        encode_long(2),  # metadata map: one block of two entries, then an empty block
        *_avro_bytes(b"avro.schema"),
        *_avro_bytes(schema_json.encode()),
        *_avro_bytes(b"avro.codec"),
        *_avro_bytes(b"null"),
        encode_long(0),
        CONTAINER_SYNC,
        encode_long(len(bodies)),
        encode_long(len(block)),
        block,
        CONTAINER_SYNC,
    ]
    return b"".join(parts)


def _avro_bytes(value: bytes) -> tuple[bytes, bytes]:
    return encode_long(len(value)), value


def _field_kind(field: Mapping[str, Any]) -> tuple[str, bool]:
    """Return (primitive type, is a ["null", T] union) or raise for unsupported types."""
    avro_type = field["type"]
    nullable = isinstance(avro_type, list)
    if nullable:
        if len(avro_type) != 2 or avro_type[0] != "null":
            raise SchemaError(f'field {field["name"]!r}: only ["null", T] unions are supported')
        avro_type = avro_type[1]
    if avro_type not in _POLARS_DTYPES:
        raise SchemaError(f"field {field['name']!r}: Avro type {avro_type!r} is not supported")
    return avro_type, nullable


def _checked_column(frame: pl.DataFrame, name: str, kind: str, nullable: bool) -> pl.Series:
    if name not in frame.columns:
        raise SchemaError(f"column {name!r} is missing")
    column = frame.get_column(name)
    if column.dtype != _POLARS_DTYPES[kind]:
        raise SchemaError(f"column {name!r} is {column.dtype}, not {_POLARS_DTYPES[kind]}")
    if not nullable and column.null_count():
        raise SchemaError(f"column {name!r} has nulls but its Avro type is not nullable")
    return column


def _encode_column(column: pl.Series, kind: str, nullable: bool) -> list[pa.Array]:
    """Return the pieces whose row-wise concatenation is the field's encoding."""
    valid = column.is_not_null().to_numpy() if nullable else None
    if kind == "string":
        lengths = column.str.len_bytes().fill_null(0).cast(pl.Int64).to_numpy()
        values = column.to_arrow(compat_level=pl.CompatLevel.oldest()).cast(pa.large_binary())
        return [_varint_array(_zigzag(lengths), valid), values]
    numbers = column.cast(pl.Int64).fill_null(0).to_numpy()
    # A boolean is one byte, 0 or 1, which is also the varint of 0 or 1.
    encoded = numbers.view(np.uint64) if kind == "boolean" else _zigzag(numbers)
    return [_varint_array(encoded, valid)]


def _zigzag(values: npt.NDArray[np.int64]) -> _UInt64s:
    """Map signed to unsigned so small magnitudes get short varints: 0, -1, 1, -2 -> 0, 1, 2, 3."""
    return (values.view(np.uint64) << np.uint64(1)) ^ (values >> np.int64(63)).view(np.uint64)


def _varint_array(values: _UInt64s, valid: _Bools | None = None) -> pa.LargeBinaryArray:
    """Return each value's varint; with `valid`, as a ["null", T] union branch.

    A union row is 0x02 + varint when valid, and the single byte 0x00 when null: null rows
    must hold the value 0, whose varint is one byte that the row's size then leaves out.
    """
    width = max(1, (int(values.max(initial=0)).bit_length() + 6) // 7)
    sizes = np.ones(len(values), dtype=np.uint8)
    for k in range(1, width):
        sizes += values >= np.uint64(1 << (7 * k))
    lead = 0 if valid is None else 1
    matrix = np.empty((len(values), lead + width), dtype=np.uint8)
    for k in range(width):
        low_bits = (values >> np.uint64(7 * k)).astype(np.uint8) & np.uint8(0x7F)
        matrix[:, lead + k] = low_bits | ((sizes > k + 1).astype(np.uint8) << np.uint8(7))
    if valid is not None:
        matrix[:, 0] = valid.astype(np.uint8) << np.uint8(1)
        sizes += valid
    keep = np.empty(matrix.shape, dtype=np.bool_)
    for k in range(lead + width):
        np.greater(sizes, k, out=keep[:, k])
    data = np.compress(keep.ravel(), matrix.ravel())  # much faster than matrix[keep]
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(sizes, dtype=np.int64, out=offsets[1:])
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    return pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(values), buffers)


def well_formed(bodies: pa.LargeBinaryArray, schema: Mapping[str, Any]) -> _Bools:
    """Tell which bodies have exactly the layout of record `schema`.

    All bodies are walked field by field at once: each union index and boolean must be 0 or
    1, each varint (at most 10 bytes) and string must end inside its body, and no byte may
    be left over. String contents (UTF-8) are not checked.
    """
    offsets, data = _layout(bodies)
    cursor, ends = offsets[:-1].copy(), offsets[1:]
    ok = np.ones(len(bodies), dtype=np.bool_)
    for field in schema["fields"]:
        kind, nullable = _field_kind(field)
        present = ok
        if nullable:
            branch = _bytes_at(data, cursor, ends)
            ok = ok & ((branch == 0) | (branch == 2))
            present = ok & (branch == 2)
            cursor += ok
        width = _field_width(data, cursor, ends, kind)
        ok = ok & (~present | (width >= 0))
        cursor += np.where(present & ok, width, 0)
    complete: _Bools = ok & (cursor == ends)
    return complete


def _layout(bodies: pa.LargeBinaryArray) -> tuple[_Int64s, npt.NDArray[np.uint8]]:
    """Return the bodies' offsets (len + 1) into their data buffer, and that buffer."""
    _, offsets_buffer, data_buffer = bodies.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)
    data = np.frombuffer(data_buffer or b"", dtype=np.uint8)
    return offsets[bodies.offset : bodies.offset + len(bodies) + 1], data


def _field_width(data: npt.NDArray[np.uint8], cursor: _Int64s, ends: _Int64s, kind: str) -> _Int64s:
    """Return how many bytes the field's value takes at `cursor`, or -1 if it cannot fit."""
    if kind == "boolean":
        byte = _bytes_at(data, cursor, ends)
        return np.where((byte == 0) | (byte == 1), 1, -1)
    value, size = _read_varints(data, cursor, ends)
    if kind == "long":
        return np.where(size > 0, size, -1)
    length = (value >> np.uint64(1)).view(np.int64) ^ -(value & np.uint64(1)).view(np.int64)
    fits = (size > 0) & (length >= 0) & (length <= ends - cursor - size)
    return np.where(fits, size + length, -1)


def _read_varints(
    data: npt.NDArray[np.uint8], cursor: _Int64s, ends: _Int64s
) -> tuple[_UInt64s, _Int64s]:
    """Read one varint per row at `cursor`; size 0 where it does not end inside the body."""
    value = np.zeros(len(cursor), dtype=np.uint64)
    size = np.zeros(len(cursor), dtype=np.int64)
    pending = np.ones(len(cursor), dtype=np.bool_)
    for k in range(10):
        byte = _bytes_at(data, cursor + k, ends)
        pending &= byte >= 0
        low_bits = (byte & 0x7F).astype(np.uint64) << np.uint64(7 * k)
        value |= np.where(pending, low_bits, np.uint64(0))
        last = pending & (byte < 0x80)
        size[last] = k + 1
        pending &= ~last
        if not pending.any():
            break
    return value, size


def _bytes_at(data: npt.NDArray[np.uint8], positions: _Int64s, ends: _Int64s) -> _Int16s:
    """Return the byte at each position, or -1 where the position is past its body's end."""
    if data.size == 0:
        return np.full(len(positions), -1, dtype=np.int16)
    values = data[np.minimum(positions, data.size - 1)].astype(np.int16)
    return np.where(positions < ends, values, np.int16(-1))
