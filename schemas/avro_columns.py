"""Avro binary encoding of whole columns at once, with numpy and pyarrow.

Encoding events one dict at a time through fastavro costs a Python call per field per row,
which dominates publishing large uploads. Avro's binary encoding of a flat record is simply
the concatenation of each field's bytes, so every field can be encoded as a column: numpy
computes zigzag varints (lengths, longs, union indexes) for all rows at once, and pyarrow
joins the per-field pieces row by row in C++. No Python code runs per row.

Only the types the event contract needs are supported: ``string``, ``boolean``, ``long`` and
their ``["null", T]`` unions. The module also frames bodies as an Avro object container
file, which lets a columnar reader decode a whole batch in one call.
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

__all__ = ["CONTAINER_SYNC", "container_file", "encode_long", "encode_records", "polars_schema"]

# Any 16 bytes will do: a reader only compares the marker after each block with the header's.
CONTAINER_SYNC = b"meterpipe.batch."

_UInt64s = npt.NDArray[np.uint64]
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


def container_file(schema_json: str, count: int, block: bytes | pa.Buffer) -> bytes:
    """Wrap `count` concatenated bodies in an uncompressed one-block object container file."""
    schema_bytes = schema_json.encode()
    header = [
        b"Obj\x01",
        encode_long(2),  # metadata map: one block of two entries, then an empty block
        *_avro_bytes(b"avro.schema"),
        *_avro_bytes(schema_bytes),
        *_avro_bytes(b"avro.codec"),
        *_avro_bytes(b"null"),
        encode_long(0),
        CONTAINER_SYNC,
    ]
    data_block = [encode_long(count), encode_long(len(block)), block, CONTAINER_SYNC]
    return b"".join([*header, *data_block])


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
    unsigned = values.astype(np.int64).view(np.uint64)
    return (unsigned << np.uint64(1)) ^ (values >> np.int64(63)).view(np.uint64)


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
