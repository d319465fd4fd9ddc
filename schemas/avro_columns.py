"""Avro binary encoding of whole columns at once, with numpy and pyarrow.

Encoding events one dict at a time through fastavro costs a Python call per field per row,
which dominates publishing large uploads. Avro's binary encoding of a flat record is simply
the concatenation of each field's bytes, so every field can be encoded as a column: numpy
computes zigzag varints (lengths, longs, union indexes) for all rows at once, and pyarrow
joins the per-field pieces row by row in C++. No Python code runs per row.

Decoding is the same idea in reverse: `decode_records` walks all bodies field by field at
once, checking the layout as it goes, and builds each column straight from the positions it
found; strings become Arrow string views into the bodies' own buffer, so no text is copied.
A body that is not exactly one record is left out, never guessed at.

Only the types the event contract needs are supported: ``string``, ``boolean``, ``long`` and
their ``["null", T]`` unions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from meterpipe.errors import SchemaError

__all__ = [
    "decode_records",
    "encode_records",
    "polars_schema",
]

_UInt64s = npt.NDArray[np.uint64]
_Int64s = npt.NDArray[np.int64]
_Int16s = npt.NDArray[np.int16]
_Bools = npt.NDArray[np.bool_]

# String views hold strings of up to 12 bytes themselves, and address longer ones in their
# data buffer with signed 32-bit offsets (that buffer is `_padded`).
_INLINE = 12
# Keeps the first n bytes (the index) of a little-endian 32-bit word.
_WORD_MASKS = np.array([0, 0xFF, 0xFFFF, 0xFFFFFF, 0xFFFFFFFF], dtype=np.uint32)
_MAX_VIEW_OFFSET = 2**31 - 1 - _INLINE
_TAIL_BYTES = 24  # see _padded

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
        kind, nullable = _field_kind(field)
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
        {field["name"]: _POLARS_DTYPES[_field_kind(field)[0]] for field in schema["fields"]}
    )


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


def decode_records(
    bodies: pa.LargeBinaryArray, schema: Mapping[str, Any]
) -> tuple[pl.DataFrame, _Bools]:
    """Decode every body that is exactly one record `schema`, all at once.

    Returns the decoded rows, in input order, as a frame of `polars_schema(schema)`, and
    which bodies they are. All bodies are walked field by field together: each union
    index and boolean must be 0 or 1, each varint must end within 10 bytes and fit 64
    bits, each string must end inside its body and be UTF-8, and no byte may be left
    over. Strings are not copied: each becomes a view into the bodies' own buffer.
    """
    offsets, data = _layout(bodies)
    if offsets[-1] - offsets[0] > _MAX_VIEW_OFFSET:  # views address text with 32-bit offsets
        if len(bodies) == 1:  # no record of ours comes near 2 GiB: refused unread
            return pl.DataFrame(schema=polars_schema(schema)), np.zeros(1, dtype=np.bool_)
        half = len(bodies) // 2
        head, head_ok = decode_records(bodies.slice(0, half), schema)
        tail, tail_ok = decode_records(bodies.slice(half), schema)
        return pl.concat([head, tail]), np.concatenate([head_ok, tail_ok])
    located, complete = _walk(offsets, data, schema)
    # The views' data buffer: the bodies, padded so that any string's first bytes can be read.
    texts = _padded(data[offsets[0] : offsets[-1]])
    columns: dict[str, pa.Array] = {}
    for field in located:
        column, bad = _column(field, complete, texts, int(offsets[0]))
        if bad is not None:  # strings that are not UTF-8: decode again without their rows
            complete[np.flatnonzero(complete)[bad]] = False
            return _without(bodies, schema, complete)
        columns[field.name] = column
    return pl.DataFrame(pl.from_arrow(pa.table(columns))), complete


def _without(
    bodies: pa.LargeBinaryArray, schema: Mapping[str, Any], keep: _Bools
) -> tuple[pl.DataFrame, _Bools]:
    """Decode only the bodies in `keep` (the others are known bad)."""
    frame, sound = decode_records(bodies.filter(keep), schema)
    complete = np.zeros(len(bodies), dtype=np.bool_)
    complete[np.flatnonzero(keep)[sound]] = True
    return frame, complete


@dataclass(frozen=True)
class _Located:
    """Where one field's value is in every body: what a column is built from."""

    name: str
    kind: str
    present: _Bools  # False where a ["null", T] union holds null
    start: _Int64s  # strings: where the text starts in the data buffer
    value: _UInt64s  # longs: the zigzag varint; strings: the byte length; booleans: 0 or 1


def _walk(
    offsets: _Int64s, data: npt.NDArray[np.uint8], schema: Mapping[str, Any]
) -> tuple[list[_Located], _Bools]:
    """Locate every field of every body; return them and which bodies are exactly a record."""
    cursor, ends = offsets[:-1].copy(), offsets[1:]
    ok = np.ones(len(cursor), dtype=np.bool_)
    located = []
    for field in schema["fields"]:
        kind, nullable = _field_kind(field)
        present = ok
        if nullable:
            branch = _bytes_at(data, cursor, ends)
            ok = ok & ((branch == 0) | (branch == 2))
            present = ok & (branch == 2)
            cursor += ok
        value, width, start = _field_value(data, cursor, ends, kind)
        ok = ok & (~present | (width >= 0))
        located.append(_Located(field["name"], kind, present, start, value))
        cursor += np.where(present & ok, width, 0)
    complete: _Bools = ok & (cursor == ends)
    return located, complete


def _field_value(
    data: npt.NDArray[np.uint8], cursor: _Int64s, ends: _Int64s, kind: str
) -> tuple[_UInt64s, _Int64s, _Int64s]:
    """Return the field's value at `cursor`, how many bytes it takes (-1: it cannot fit),
    and where a string's text starts."""
    if kind == "boolean":
        byte = _bytes_at(data, cursor, ends)
        fits = (byte == 0) | (byte == 1)
        return np.where(fits, byte, 0).astype(np.uint64), np.where(fits, 1, -1), cursor
    value, size = _read_varints(data, cursor, ends)
    if kind == "long":
        return value, np.where(size > 0, size, -1), cursor
    length = _unzigzag(value)
    fits = (size > 0) & (length >= 0) & (length <= ends - cursor - size)
    width = np.where(fits, size + length, -1)
    return np.where(fits, length, 0).view(np.uint64), width, cursor + size


def _column(
    field: _Located, rows: _Bools, texts: npt.NDArray[np.uint8], base: int
) -> tuple[pa.Array, _Bools | None]:
    """Build the field's column for `rows`; or say which of them are not UTF-8.

    `texts` holds the bodies' bytes from position `base` on, where strings are viewed.
    """
    present = field.present[rows]
    validity = None if present.all() else pa.py_buffer(np.packbits(present, bitorder="little"))
    value = field.value[rows]
    if field.kind == "boolean":
        bits = pa.py_buffer(np.packbits(value == 1, bitorder="little"))
        return pa.Array.from_buffers(pa.bool_(), len(value), [validity, bits]), None
    if field.kind == "long":
        longs = pa.py_buffer(_unzigzag(value))
        return pa.Array.from_buffers(pa.int64(), len(value), [validity, longs]), None
    views = _string_views(texts, field.start[rows] - base, value.view(np.int64), present)
    buffers = [validity, pa.py_buffer(views), pa.py_buffer(texts)]
    binary = pa.Array.from_buffers(pa.binary_view(), len(value), buffers)
    try:
        return binary.cast(pa.string_view()), None
    except pa.ArrowInvalid:  # rare: find the culprits one by one
        return binary, np.array([not _is_utf8(text) for text in binary.to_pylist()])


def _padded(bodies: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """`bodies` copied into a buffer of whole 64-bit words, with three spare words at the end,
    so that the 12 bytes at any position can be read as three aligned words."""
    texts = np.zeros((len(bodies) + _TAIL_BYTES + 7) // 8 * 8, dtype=np.uint8)
    texts[: len(bodies)] = bodies
    return texts


def _string_views(
    texts: npt.NDArray[np.uint8], start: _Int64s, length: _Int64s, present: _Bools
) -> npt.NDArray[np.int32]:
    """Arrow's 16-byte string views, as four int32 words: the length, then the text itself
    (zero padded) when it fits in 12 bytes, else its first 4 bytes, buffer 0 and where it
    starts in `texts` (a `_padded` buffer)."""
    lengths = np.where(present, length, 0).astype(np.int32)
    views: npt.NDArray[np.int32] = np.zeros((len(start), 4), dtype="<i4")
    if not present.any():
        return views
    start = np.where(present, start, 0)
    # Each text's first bytes, out of the aligned 64-bit words around them: gathering
    # aligned words is several times faster than reading unaligned ones.
    words = texts.view("<u8")
    index, shift = start >> 3, (start & 7).astype(np.uint64) * np.uint64(8)
    back = np.uint64(63) - shift  # shifted by one more: a shift of 64 bits is undefined

    def bytes_from(first_word: _Int64s) -> npt.NDArray[np.uint64]:
        """8 bytes of each text: at `start` from the start's own word, at `start + 8` from
        the next."""
        low, high = words[first_word], words[first_word + 1]
        joined: npt.NDArray[np.uint64] = (low >> shift) | ((high << np.uint64(1)) << back)
        return joined

    head = bytes_from(index)
    views[:, 0] = lengths
    views[:, 1] = head.astype(np.uint32).view("<i4")  # a long text's prefix
    views[:, 3] = start
    short = lengths <= _INLINE
    if not short.any():  # the usual column of UUIDs, dates, references
        return views
    pieces = (head, head >> np.uint64(32), bytes_from(index + 1))
    for k, piece in enumerate(pieces):  # a short text's bytes 4k..4k+3, cut at its end
        word = (piece.astype(np.uint32) & _WORD_MASKS[np.clip(lengths - 4 * k, 0, 4)]).view("<i4")
        views[:, k + 1] = np.where(short, word, views[:, k + 1])
    return views


def _is_utf8(text: bytes | None) -> bool:
    try:
        (text or b"").decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _unzigzag(values: _UInt64s) -> _Int64s:
    """Undo `_zigzag`: 0, 1, 2, 3 -> 0, -1, 1, -2."""
    result: _Int64s = (values >> np.uint64(1)).view(np.int64) ^ -(values & np.uint64(1)).view(
        np.int64
    )
    return result


def _layout(bodies: pa.LargeBinaryArray) -> tuple[_Int64s, npt.NDArray[np.uint8]]:
    """Return the bodies' offsets (len + 1) into their data buffer, and that buffer."""
    _, offsets_buffer, data_buffer = bodies.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)
    data = np.frombuffer(data_buffer or b"", dtype=np.uint8)
    return offsets[bodies.offset : bodies.offset + len(bodies) + 1], data


def _read_varints(
    data: npt.NDArray[np.uint8], cursor: _Int64s, ends: _Int64s
) -> tuple[_UInt64s, _Int64s]:
    """Read one varint per row at `cursor`; size 0 where it does not end inside the body."""
    value = np.zeros(len(cursor), dtype=np.uint64)
    size = np.zeros(len(cursor), dtype=np.int64)
    pending = np.ones(len(cursor), dtype=np.bool_)
    for k in range(10):
        byte = _bytes_at(data, cursor + k, ends)
        pending &= (byte >= 0) if k < 9 else (byte >= 0) & (byte <= 1)  # 64 bits at most
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
