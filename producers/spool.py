"""Validated rows kept on disk between the two passes over an upload.

The first pass parses and validates the file once; its valid rows go to an Arrow IPC
stream here, so the second pass (after the whole file is known to be good and its
SHA-256 is known) only assigns eventIds, encodes and sends. Disk, not memory: the
spool is about the size of the file and is deleted when the upload has been sent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import polars as pl
import pyarrow as pa
from pyarrow import ipc

__all__ = ["RowSpool"]


class RowSpool:
    """An append-then-read-back spool of same-schema frames in one file."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._sink: pa.NativeFile | None = None
        self._writer: ipc.RecordBatchStreamWriter | None = None
        self._schema: pa.Schema | None = None

    def append(self, frame: pl.DataFrame) -> None:
        """Add rows; the first frame fixes the schema."""
        table = frame.to_arrow()
        if self._writer is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._schema = table.schema
            self._sink = pa.OSFile(str(self._path), "wb")
            self._writer = ipc.new_stream(self._sink, self._schema)
        self._writer.write_table(table.cast(self._schema))

    def frames(self) -> Iterator[pl.DataFrame]:
        """Read the rows back, one written frame at a time."""
        self._finish_writing()
        if not self._path.exists():
            return
        with pa.OSFile(str(self._path), "rb") as source:
            for batch in ipc.open_stream(source):
                yield pl.DataFrame(pl.from_arrow(batch))

    def _finish_writing(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._sink is not None:
            self._sink.close()
            self._sink = None

    def __enter__(self) -> RowSpool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._finish_writing()
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()
