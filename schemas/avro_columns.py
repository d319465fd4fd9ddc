"""The record layout both directions share, and encoding whole frames at once.

Avro's binary encoding of a flat record is the concatenation of each field's bytes. Encoding
events one dict at a time through fastavro costs a Python call per field per row, which
dominated publishing large uploads; here each column is handed over as its Arrow buffers and
the C extension `schemas._avro_batch` writes every record in one pass. Decoding is in
`schemas.avro_decode`.

Only the types the event contract needs are supported: ``string``, ``boolean`` and ``long``
and their ``["null", T]`` unions. Each field is known to the C side by a one-letter code:
``s``, ``b`` or ``l``, upper case for the union with null.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from meterpipe.errors import SchemaError
from schemas._avro_batch import encode_records as encode_columns

__all__ = [
    "encode_records",
    "field_code",
    "field_kind",
    "polars_schema",
]

_POLARS_DTYPES: dict[str, pl.DataType] = {
    "string": pl.String(),
    "boolean": pl.Boolean(),
    "long": pl.Int64(),
}
_CODES = {"string": "s", "boolean": "b", "long": "l"}


def encode_records(
    frame: pl.DataFrame, schema: Mapping[str, Any], prefix: bytes = b""
) -> list[bytes]:
    """Encode each row of `frame` as `prefix` then the Avro binary body of record `schema`.

    `frame` has one column per field, named like the field: pl.String for strings,
    pl.Boolean for booleans, pl.Int64 for longs; nulls only in ``["null", T]`` fields.
    Other columns are ignored. Raises SchemaError if a column is missing or does not fit.
    """
    columns = []
    for field in schema["fields"]:
        kind, nullable = field_kind(field)
        column = _checked_column(frame, field["name"], kind, nullable)
        # The oldest Arrow layout: strings as large_string, one int64 offsets buffer and one
        # data buffer (not views).
        array = column.to_arrow(compat_level=pl.CompatLevel.oldest())
        validity, values, *data = array.buffers()
        columns.append((_code(kind, nullable), array.offset, validity, values, *(data or [None])))
    return encode_columns(frame.height, columns, prefix)


def polars_schema(schema: Mapping[str, Any]) -> pl.Schema:
    """Return the frame schema `encode_records` expects for record `schema`."""
    return pl.Schema(
        {field["name"]: _POLARS_DTYPES[field_kind(field)[0]] for field in schema["fields"]}
    )


def field_code(field: Mapping[str, Any]) -> str:
    """The field's one-letter code for the C side (see the module docstring)."""
    return _code(*field_kind(field))


def _code(kind: str, nullable: bool) -> str:
    return _CODES[kind].upper() if nullable else _CODES[kind]


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
