"""Decoding a whole batch of framed Avro records at once, straight into Arrow columns.

A consumer decodes every event it reads, so this is on the hot path. The walk over the
bodies is one pass in C (`schemas/_avro_batch.c`): it checks each message's header, reads
each body field by field, and writes every column in Arrow's layout, with strings as views
into one buffer of the decoded bodies. Here those buffers are wrapped without copying. A
body that is not exactly one record is left out, never guessed at: each union index and
boolean must be 0 or 1, each varint must end within 10 bytes and fit 64 bits, each string
must end inside its body and be UTF-8, and no byte may be left over.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from schemas._avro_batch import scan_records
from schemas.avro_columns import field_code, field_kind, polars_schema

__all__ = [
    "BARE",
    "Framing",
    "MessageValues",
    "Status",
    "binary_column",
    "decode_records",
    "with_nulls_at",
]

# Views address long strings in their buffer with signed 32-bit offsets; 12 bytes are
# left for the text an offset points at.
_MAX_VIEW_OFFSET = 2**31 - 1 - 12

_Statuses = npt.NDArray[np.uint8]
# Message values: one Arrow large binary column (as the consumer reads them), or a list.
MessageValues: TypeAlias = "Sequence[bytes | None] | pa.Array"


class Status(enum.IntEnum):
    """What became of each message value (the C scanner's status codes)."""

    DECODED = 0
    NOT_FRAMED = 1  # too short, or without the framing's marker
    UNKNOWN_HEADER = 2  # framed, but its header names no accepted schema
    UNDECODABLE = 3  # not exactly one record


@dataclass(frozen=True)
class Framing:
    """How a message value starts: `header_size` bytes, beginning with `marker`, of which
    the `accepted` headers name the record's schema."""

    header_size: int
    marker: bytes
    accepted: tuple[bytes, ...]


BARE = Framing(0, b"", (b"",))  # schemaless bodies: no header at all


def binary_column(values: MessageValues) -> pa.Array:
    """`values` as one Arrow large binary column; a list is copied into one."""
    if isinstance(values, pa.Array):
        return values if values.type == pa.large_binary() else values.cast(pa.large_binary())
    return pa.array(values, type=pa.large_binary())


def with_nulls_at(values: pa.Array, indexes: Sequence[int]) -> pa.Array:
    """`values` with the values at `indexes` null: left out of decoding, in place."""
    blank = np.zeros(len(values), dtype=np.bool_)
    blank[list(indexes)] = True
    return pc.if_else(pa.array(blank), pa.scalar(None, values.type), values)


def decode_records(
    values: MessageValues, schema: Mapping[str, Any], framing: Framing = BARE
) -> tuple[pl.DataFrame, _Statuses]:
    """Decode every value that starts with an accepted header and then holds exactly one
    record `schema`.

    Returns the decoded rows, in input order, as a frame of `polars_schema(schema)`, and a
    `Status` per value. Strings are not copied again: each is a view into one buffer.
    """
    column = binary_column(values)
    kinds = "".join(field_code(field) for field in schema["fields"]).encode()
    validity, offsets, data = column.buffers()
    try:
        scanned = scan_records(
            len(column), ("S", column.offset, validity, offsets, data), framing.header_size,
            framing.marker, framing.accepted, kinds, _MAX_VIEW_OFFSET,
        )  # fmt: skip
    except OverflowError:  # more text than one buffer of views can address
        return _in_halves(column, schema, framing)
    status_bytes, rows, data, validity, columns, nulls = scanned
    statuses = np.frombuffer(status_bytes, dtype=np.uint8).copy()
    arrays: dict[str, pa.Array] = {}
    text = pa.py_buffer(data)
    for field, valid, field_column, null_count in zip(
        schema["fields"], validity, columns, nulls, strict=True
    ):
        kind = field_kind(field)[0]
        bitmap = pa.py_buffer(valid) if null_count else None
        arrays[field["name"]] = _arrow_array(
            kind, rows, bitmap, pa.py_buffer(field_column), text, null_count=null_count
        )
    return pl.DataFrame(pl.from_arrow(pa.table(arrays))), statuses


def _arrow_array(
    kind: str, rows: int, bitmap: pa.Buffer | None, column: pa.Buffer, text: pa.Buffer,
    *, null_count: int,
) -> pa.Array:  # fmt: skip
    """The column as an Arrow array over the scanner's buffers (its strings are UTF-8)."""
    if kind == "boolean":
        return pa.Array.from_buffers(pa.bool_(), rows, [bitmap, column], null_count)
    if kind == "long":
        return pa.Array.from_buffers(pa.int64(), rows, [bitmap, column], null_count)
    return pa.Array.from_buffers(pa.string_view(), rows, [bitmap, column, text], null_count)


def _in_halves(
    values: pa.Array, schema: Mapping[str, Any], framing: Framing
) -> tuple[pl.DataFrame, _Statuses]:
    """Decode the two halves of a batch apart; a single value too large is UNDECODABLE."""
    if len(values) == 1:  # no record of ours comes near 2 GiB: refused unread
        return pl.DataFrame(schema=polars_schema(schema)), np.array([Status.UNDECODABLE], np.uint8)
    half = len(values) // 2
    head, head_statuses = decode_records(values.slice(0, half), schema, framing)
    tail, tail_statuses = decode_records(values.slice(half), schema, framing)
    return pl.concat([head, tail]), np.concatenate([head_statuses, tail_statuses])
