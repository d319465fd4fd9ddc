"""A frame as one Arrow IPC blob: how SQLite writes a whole batch as one row.

A row per event (or per total) costs SQLite and the Python driver a few microseconds
each, which dominates a batch of tens of thousands; one blob per batch costs one insert.
Blobs read a few rows at a time (a batch's eventIds) are uncompressed: pyarrow then reads
them in place, so taking a handful of rows out of a 50k-row blob costs about a millisecond
(LZ4 would cost several, to save a third of the bytes). Blobs always read whole (totals)
are LZ4-compressed: a fraction of the bytes to write and check-point, for a few ms more.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Literal

import polars as pl
import pyarrow as pa

__all__ = ["frame_from_blob", "frame_to_blob"]


def frame_to_blob(frame: pl.DataFrame, *, compressed: bool = False) -> bytes:
    """Serialize `frame`, schema included; LZ4-compressed if it is only ever read whole."""
    buffer = io.BytesIO()
    compression: Literal["lz4", "uncompressed"] = "lz4" if compressed else "uncompressed"
    # The oldest layout (large_string, not string views) is what pyarrow's `take` handles.
    frame.write_ipc(buffer, compression=compression, compat_level=pl.CompatLevel.oldest())
    return buffer.getvalue()


def frame_from_blob(blob: bytes, rows: Sequence[int] | None = None) -> pl.DataFrame:
    """The frame `frame_to_blob` stored, or only its `rows` (positions, in that order)."""
    table = pa.ipc.open_file(pa.py_buffer(blob)).read_all()
    if rows is not None:
        table = table.take(pa.array(rows, type=pa.int64()))
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)  # a Table always gives a frame
    return frame
