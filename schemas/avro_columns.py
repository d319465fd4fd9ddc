"""Avro binary encoding of whole columns at once, with numpy and pyarrow.

Encoding events one dict at a time through fastavro costs a Python call per field per row,
which dominates publishing large uploads. Avro's binary encoding of a flat record is simply
the concatenation of each field's bytes, so every field can be encoded as a column: numpy
computes zigzag varints (lengths, longs, union indexes) for all rows at once, and pyarrow
joins the per-field pieces row by row in C++. No Python code runs per row. Decoding is in
`schemas.avro_decode`.

Only the types the event contract needs are supported: ``string``, ``boolean`` and ``long``
and their ``["null", T]`` unions.
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
    "encode_records",
    "field_kind",
    "polars_schema",
]

_UInt64s = npt.NDArray[np.uint64]
_Bools = npt.NDArray[np.bool_]

_POLARS_DTYPES: dict[str, pl.DataType] = {
    "string": pl.String(),
    "boolean": pl.Boolean(),
    "long": pl.Int64(),
}


def encode_records(
    frame: pl.DataFrame, schema: Mapping[str, Any], prefix: bytes = b""
) -> pa.LargeBinaryArray:
    """Encode each row of `frame` as the Avro binary body of record `schema`, after `prefix`.

    `frame` has one column per field, named like the field: pl.String for strings,
    pl.Boolean for booleans, pl.Int64 for longs; nulls only in ``["null", T]`` fields.
    Other columns are ignored. Raises SchemaError if a column is missing or does not fit.
    `prefix` (a message header, say) costs nothing extra: it joins the first constant piece.
    """
    pieces: list[pa.Array | bytes] = [prefix]
    for field in schema["fields"]:
        kind, nullable = field_kind(field)
        column = _checked_column(frame, field["name"], kind, nullable)
        if len(column) > 1 and _is_constant(column):
            # One value for every row (an upload's reference, a null): encoded once.
            pieces.append(_encoded_once(column[:1], kind, nullable))
        else:
            pieces.extend(_encode_column(column, kind, nullable))
    separator = pa.scalar(b"", type=pa.large_binary())
    runs = _runs_of_constants(pieces)
    if len(runs) == 1 and isinstance(runs[0], bytes):  # every row is the same record
        return pa.array(runs * frame.height, type=pa.large_binary())
    joined = [_as_piece(run) for run in runs]
    return pc.binary_join_element_wise(*joined, separator, null_handling="skip")


def _encoded_once(value: pl.Series, kind: str, nullable: bool) -> bytes:
    """The encoding of a one-row column, as bytes."""
    return b"".join(piece[0].as_py() or b"" for piece in _encode_column(value, kind, nullable))


def _is_constant(column: pl.Series) -> bool:
    """Whether every row holds the same value (null included)."""
    if column.null_count() == len(column):
        return True
    return column.null_count() == 0 and bool((column == column[0]).all())


def _runs_of_constants(pieces: list[pa.Array | bytes]) -> list[pa.Array | bytes]:
    """Adjacent constant pieces joined into one: each piece costs a pass over every row."""
    merged: list[pa.Array | bytes] = []
    for piece in pieces:
        if isinstance(piece, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] += piece
        else:
            merged.append(piece)
    return merged


def _as_piece(piece: pa.Array | bytes) -> pa.Array | pa.Scalar:
    return pa.scalar(piece, type=pa.large_binary()) if isinstance(piece, bytes) else piece


def polars_schema(schema: Mapping[str, Any]) -> pl.Schema:
    """Return the frame schema `encode_records` expects for record `schema`."""
    return pl.Schema(
        {field["name"]: _POLARS_DTYPES[field_kind(field)[0]] for field in schema["fields"]}
    )


def field_kind(field: Mapping[str, Any]) -> tuple[str, bool]:
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
