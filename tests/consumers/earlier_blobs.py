"""Blobs as earlier versions of the SQLite store wrote them, for tests that read them back."""

from __future__ import annotations

import io
from typing import Literal

import polars as pl


def arrow_file(
    frame: pl.DataFrame, compression: Literal["uncompressed", "lz4"] = "uncompressed"
) -> bytes:
    """`frame` as an Arrow IPC file, text as plain strings: seen blocks (uncompressed) and
    totals (LZ4) before the current layouts."""
    buffer = io.BytesIO()
    frame.write_ipc(buffer, compression=compression, compat_level=pl.CompatLevel.oldest())
    return buffer.getvalue()
