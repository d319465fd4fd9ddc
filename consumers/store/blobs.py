"""A frame as one Arrow IPC blob: how SQLite writes a batch's totals as one row.

A row per total costs SQLite and the Python driver a few microseconds each, which dominates
a batch of tens of thousands; one blob per batch costs one insert. These blobs are always
read whole, and their keys repeat (an account has several units and days), so each text
column is a dictionary of its distinct values: a benchmark batch's 98k totals take 5.3 MB,
against 11.7 MB plain and 6.2 MB LZ4-compressed, and write in 14-22 ms against LZ4's
23-27 ms; reading back is 5 ms against 7-8 (LZ4 blobs of earlier versions still read).
Seen blocks of earlier versions are such files too, plain, with rows taken out of them.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import polars as pl
import pyarrow as pa

__all__ = ["frame_from_blob", "frame_to_blob"]


def frame_to_blob(frame: pl.DataFrame) -> bytes:
    """Serialize `frame`, schema included, its text columns as dictionaries."""
    frame = frame.with_columns(pl.col(pl.String).cast(pl.Categorical))
    buffer = io.BytesIO()
    # The oldest layout (large_string, not string views), as every blob before: one reader.
    frame.write_ipc(buffer, compression="uncompressed", compat_level=pl.CompatLevel.oldest())
    return buffer.getvalue()


def frame_from_blob(blob: bytes, rows: Sequence[int] | None = None) -> pl.DataFrame:
    """The frame `frame_to_blob` stored, or only its `rows` (positions, in that order).

    Text stored as dictionaries stays so (pl.Categorical; `to_list()` gives str): a fold
    concatenates millions of deltas, and their text as strings took a gigabyte more.
    """
    table = pa.ipc.open_file(pa.py_buffer(blob)).read_all()
    if rows is not None:
        table = table.take(pa.array(rows, type=pa.int64()))
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)  # a Table always gives a frame
    return frame
