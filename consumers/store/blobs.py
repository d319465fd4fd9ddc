"""A frame as one compressed Arrow IPC blob: how SQLite writes a whole batch as one row.

A row per event (or per total) costs SQLite and the Python driver a few microseconds
each, which dominates a batch of tens of thousands; one blob per batch costs one insert.
LZ4 keeps the blobs small at little CPU, and IPC gives the frame back with its types.
"""

from __future__ import annotations

import io

import polars as pl

__all__ = ["frame_from_blob", "frame_to_blob"]


def frame_to_blob(frame: pl.DataFrame) -> bytes:
    """Serialize `frame`, schema included."""
    buffer = io.BytesIO()
    frame.write_ipc(buffer, compression="lz4")
    return buffer.getvalue()


def frame_from_blob(blob: bytes) -> pl.DataFrame:
    """The frame `frame_to_blob` stored."""
    return pl.read_ipc(io.BytesIO(blob))
