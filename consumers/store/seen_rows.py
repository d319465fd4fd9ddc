"""The eventIds a seen block holds, laid out so that any one row can be read alone.

Confirming a batch's dedupe candidates reads, from each block that may hold one, only the
candidate rows. When blocks were Arrow files, every block with a candidate was read
whole: a duplicate in each of 50 earlier batches read 50 blocks of 7 MB, and a stream
with duplicates spread over its history slowed down with every batch (a 5M-event run
spent 109-123 ms a batch on it, against 13 ms in its first batches). Here a row costs two
small reads through SQLite's incremental blob I/O, whatever the block's size.

Layout, little-endian:
- header: magic `MPS2`, rows n, where the upload table starts, where the eventIds start;
- n + 1 records of 32 bytes: rowNumber (int64), where its eventId starts (uint32, from the
  eventIds' start), its upload (uint32: an index into the upload table; bit 31 set when
  rowNumber is null; all 31 low bits set when uploadRef is null), the event's content digest
  (int64, `consumers.content_digest`) and its Kafka position (int64, `consumers.batch`); the
  last record only ends the last eventId;
- the upload table: count u, u + 1 offsets (uint32, from the table's text), the text;
- the eventIds, UTF-8, one after the other.

Blocks of eventIds recorded without a digest (seeded by `record_event_ids`), and blocks
written before digests were kept, use the layout of magic `MPSR`: the same with records of
16 bytes, without the digest and position; they read as null (never a conflict).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

from consumers.content_digest import DIGEST, FIRST_ARRIVAL, POSITION
from consumers.store.blobs import frame_from_blob
from consumers.store.frames import PROVENANCE_SCHEMA
from schemas.arrow_text import utf8_with_bounds

__all__ = ["SEEN_SCHEMA", "SeenBlob", "pack_seen_rows", "read_seen_rows"]

_MAGIC = b"MPS2"
_MAGIC_V1 = b"MPSR"  # without digest and position
SEEN_SCHEMA = {  # what a seen row holds
    "eventId": pl.String, **PROVENANCE_SCHEMA, DIGEST: pl.Int64, POSITION: pl.Int64,
}  # fmt: skip
_HEADER = struct.Struct("<4sIII")  # magic, rows, upload table at, eventIds at
_RECORD_V1 = np.dtype([("row", "<i8"), ("id_start", "<u4"), ("upload", "<u4")])
_RECORD = np.dtype([*_RECORD_V1.descr, (DIGEST, "<i8"), (POSITION, "<i8")])
# A row's record and the start of the next (where its id ends), in each layout.
_TWO_RECORDS = {_MAGIC: struct.Struct("<qIIqqqII"), _MAGIC_V1: struct.Struct("<qIIqII")}
_RECORDS = {_MAGIC: _RECORD, _MAGIC_V1: _RECORD_V1}
_ROW_NULL = 1 << 31
_NO_UPLOAD = _ROW_NULL - 1
# Above this share of a block's rows, reading the block whole is cheaper than row by row.
WHOLE_READ_SHARE = 1 / 32


class SeenBlob(Protocol):
    """What is read: bytes, or an open `sqlite3.Blob` (sliced without reading the rest)."""

    def __getitem__(self, index: slice, /) -> Any: ...  # bytes (typeshed says int for Blob)


def _text(series: pl.Series) -> tuple[memoryview, npt.NDArray[np.uint32]]:
    """The strings (none null) as one UTF-8 buffer, and the n + 1 offsets into it."""
    utf8, bounds = utf8_with_bounds(series)
    return utf8, bounds.astype(np.uint32)


def pack_seen_rows(frame: pl.DataFrame) -> bytes:
    """`frame` (eventId, never null; uploadRef; rowNumber; digest and position, when every
    row has both) in the row-addressable layout."""
    event_ids, id_starts = _text(frame["eventId"])
    refs, rows = frame["uploadRef"], frame["rowNumber"]
    names = refs.drop_nulls().unique(maintain_order=True)
    upload = refs.cast(pl.Enum(names.to_list())).to_physical().cast(pl.UInt32)
    with_digests = all(
        name in frame.columns and not frame[name].has_nulls() for name in FIRST_ARRIVAL
    )
    magic = _MAGIC if with_digests else _MAGIC_V1
    records = np.zeros(frame.height + 1, dtype=_RECORDS[magic])
    if with_digests:
        for name in FIRST_ARRIVAL:
            records[name][:-1] = frame[name].to_numpy()
    records["id_start"] = id_starts
    records["row"][:-1] = rows.fill_null(0).to_numpy()
    records["upload"][:-1] = upload.fill_null(_NO_UPLOAD).to_numpy()
    records["upload"][:-1][rows.is_null().to_numpy()] |= _ROW_NULL
    table_text, table_offsets = _text(names)
    table = b"".join((struct.pack("<I", names.len()), table_offsets.tobytes(), table_text))
    uploads_at = _HEADER.size + records.nbytes
    header = _HEADER.pack(magic, frame.height, uploads_at, uploads_at + len(table))
    return b"".join((header, records.tobytes(), table, event_ids))  # one copy of each


def _upload_names(table: bytes) -> list[str]:
    """The upload table's names, in index order."""
    (count,) = struct.unpack_from("<I", table)
    offsets = np.frombuffer(table, dtype=np.uint32, count=count + 1, offset=4).tolist()
    text = table[4 * (count + 2) :]
    return [text[offsets[i] : offsets[i + 1]].decode() for i in range(count)]


def read_seen_rows(blob: SeenBlob, positions: Sequence[int]) -> pl.DataFrame:
    """The rows at `positions` (in that order) of a block packed by `pack_seen_rows`.

    Blocks written before this layout existed hold an Arrow file (`frame_to_blob`).
    """
    magic, rows, uploads_at, ids_at = _HEADER.unpack(blob[: _HEADER.size])
    if magic not in _RECORDS:  # a block of an earlier version: an Arrow file, read whole
        return _with_first_arrival(frame_from_blob(blob[:], positions))
    if len(positions) > rows * WHOLE_READ_SHARE:
        return _read_whole(blob[:], positions)
    names = _upload_names(blob[uploads_at:ids_at])
    two_records, size = _TWO_RECORDS[magic], _RECORDS[magic].itemsize
    found: list[tuple[str, str | None, int | None, int | None, int | None]] = []
    for position in positions:
        at = _HEADER.size + position * size
        row, start, upload, *first_arrival, _, end, _ = two_records.unpack(
            blob[at : at + two_records.size]
        )
        index = upload & _NO_UPLOAD
        digest, where = first_arrival if first_arrival else (None, None)
        found.append((
            blob[ids_at + start : ids_at + end].decode(),
            None if index == _NO_UPLOAD else names[index],
            None if upload & _ROW_NULL else row,
            digest,
            where,
        ))  # fmt: skip
    return pl.DataFrame(found, schema=SEEN_SCHEMA, orient="row")


def _with_first_arrival(frame: pl.DataFrame) -> pl.DataFrame:
    """A frame of eventIds and provenance, with null digest and position."""
    return frame.with_columns(pl.lit(None, pl.Int64).alias(name) for name in FIRST_ARRIVAL)


def _read_whole(data: bytes, positions: Sequence[int]) -> pl.DataFrame:
    """`read_seen_rows` from the whole block at once, for many positions."""
    magic, rows, uploads_at, ids_at = _HEADER.unpack_from(data)
    records = np.frombuffer(data, dtype=_RECORDS[magic], count=rows + 1, offset=_HEADER.size)
    # As Arrow's 32-bit string offsets: a batch's eventIds (1M of 128 chars at most) fit.
    starts = np.ascontiguousarray(records["id_start"]).view(np.int32)
    text = pa.py_buffer(memoryview(data)[ids_at:])
    event_ids = pa.Array.from_buffers(pa.string(), rows, [None, pa.py_buffer(starts), text])
    taken = np.asarray(positions, dtype=np.int64)
    upload, row = records["upload"][taken], records["row"][taken]
    index = upload & _NO_UPLOAD
    names = _upload_names(data[uploads_at:ids_at])
    index[index == _NO_UPLOAD] = len(names)  # the None after the names
    frame = pl.DataFrame({
        "eventId": pl.Series(event_ids.take(pa.array(taken))),
        "uploadRef": pl.Series([*names, None], dtype=pl.String).gather(index),
        "rowNumber": pl.Series(row).scatter(np.flatnonzero(upload & _ROW_NULL), None),
    })  # fmt: skip
    if magic == _MAGIC_V1:
        return _with_first_arrival(frame)
    return frame.with_columns(
        pl.Series(name, records[name][taken], dtype=pl.Int64) for name in FIRST_ARRIVAL
    )
