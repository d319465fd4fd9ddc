"""Streaming a CSV file as record-aligned chunks of string columns, in bounded memory.

The file is read `chunk_bytes` at a time and cut at the last line break that is outside
quotes, so a quoted cell may hold line breaks and no record is ever split. Each chunk is
parsed by polars into string columns; a chunk polars refuses (a row with the wrong
number of fields) is re-read with the csv module so the bad rows can be named.
Rows are numbered as a spreadsheet shows them: the header is row 1.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import polars as pl

from meterpipe.errors import FileRejectedError
from schemas.validation import RowError

__all__ = ["CsvChunk", "CsvChunkReader", "HeaderCheck"]

BOM = b"\xef\xbb\xbf"
# Given the header's names, returns the columns in canonical order or raises
# FileRejectedError: the reader knows CSV, its caller knows formats.
HeaderCheck = Callable[[list[str]], tuple[str, ...]]
ROW_NUMBER = "rowNumber"


@dataclass(frozen=True)
class CsvChunk:
    """Consecutive rows: string columns in template order plus `rowNumber`."""

    frame: pl.DataFrame
    malformed: list[RowError]
    rows: int


def _record_end(buffer: bytes) -> int:
    """Index just past the last line break that is outside quotes, or 0 if there is none.

    Most files quote nothing: finding no quote at all costs a tenth of counting them.
    """
    if b'"' not in buffer:
        return buffer.rfind(b"\n") + 1
    end = len(buffer)
    while (cut := buffer.rfind(b"\n", 0, end)) >= 0:
        if buffer.count(b'"', 0, cut) % 2 == 0:
            return cut + 1
        end = cut
    return 0


def _first_record_end(buffer: bytes) -> int:
    """Index just past the first line break that is outside quotes, or 0 if there is none."""
    start = 0
    while (cut := buffer.find(b"\n", start)) >= 0:
        if buffer.count(b'"', 0, cut) % 2 == 0:
            return cut + 1
        start = cut + 1
    return 0


def _decode(data: bytes, offset: int) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileRejectedError(
            "not_utf8", f"file is not valid UTF-8: invalid byte at offset {offset + exc.start}"
        ) from exc


class CsvChunkReader:
    """Iterates a CSV byte stream as `CsvChunk`s; `sha256` is the digest of all bytes read."""

    def __init__(self, stream: BinaryIO, accept_header: HeaderCheck, chunk_bytes: int) -> None:
        self._stream = stream
        self._accept_header = accept_header
        self._columns: tuple[str, ...] = ()
        self._chunk_bytes = chunk_bytes
        self._digest = hashlib.sha256()
        self._offset = 0
        self._header: list[str] = []
        self._next_row = 2

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the bytes read so far (the whole file once iteration ends)."""
        return self._digest.hexdigest()

    @property
    def bytes_read(self) -> int:
        """Bytes consumed from the stream so far, for progress bars."""
        return self._offset

    def _read(self) -> bytes:
        data = self._stream.read(self._chunk_bytes)
        self._digest.update(data)
        return data

    def __iter__(self) -> Iterator[CsvChunk]:
        buffer = self._read_header()
        while True:
            data = self._read()
            buffer += data
            cut = _record_end(buffer) if data else len(buffer)
            if cut:
                yield self._parse(buffer[:cut])
                buffer = buffer[cut:]
            if not data:
                return

    def _read_header(self) -> bytes:
        """Read up to the end of the header record, check it, and return what follows it."""
        buffer = b""
        while not _first_record_end(buffer):
            data = self._read()
            if not data:
                break
            buffer += data
        skipped = len(buffer)
        buffer = buffer.removeprefix(BOM)
        skipped -= len(buffer)
        if not buffer.strip():
            raise FileRejectedError("empty_file", "file is empty: no header row")
        cut = _first_record_end(buffer) or len(buffer)
        header_bytes, rest = buffer[:cut], buffer[cut:]
        text = _decode(header_bytes, skipped)
        self._header = next(csv.reader(io.StringIO(text, newline="")))
        self._offset = skipped + len(header_bytes)
        self._columns = self._accept_header(self._header)
        return rest

    def _parse(self, data: bytes) -> CsvChunk:
        offset, self._offset = self._offset, self._offset + len(data)
        try:  # polars refuses bytes that are not UTF-8 too: then the slow path names them
            frame, malformed = self._parse_fast(data), list[RowError]()
        except pl.exceptions.PolarsError:
            frame, malformed = self._parse_slow(_decode(data, offset))
        rows = frame.height + len(malformed)
        self._next_row += rows
        not_blank = pl.any_horizontal(pl.col(self._columns).is_not_null())
        return CsvChunk(frame.filter(not_blank), malformed, rows)

    def _numbered(self, frame: pl.DataFrame, row_numbers: pl.Series | None = None) -> pl.DataFrame:
        if row_numbers is None:
            row_numbers = pl.int_range(self._next_row, self._next_row + frame.height, eager=True)
        return frame.select(self._columns).with_columns(
            row_numbers.cast(pl.Int64).alias(ROW_NUMBER)
        )

    def _parse_fast(self, data: bytes) -> pl.DataFrame:
        frame = pl.read_csv(
            io.BytesIO(data),
            has_header=False,
            new_columns=self._header,
            schema=dict.fromkeys(self._header, pl.String),
            raise_if_empty=False,
        )
        return self._numbered(frame)

    def _parse_slow(self, text: str) -> tuple[pl.DataFrame, list[RowError]]:
        """Re-read a chunk polars refused, naming each row whose field count is wrong."""
        good: list[list[str | None]] = []
        numbers: list[int] = []
        malformed: list[RowError] = []
        width = len(self._header)
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        row = self._next_row
        try:
            for row, cells in enumerate(reader, start=self._next_row):
                if len(cells) in (0, width):  # a blank line becomes a blank row, skipped later
                    good.append([cell or None for cell in cells] or [None] * width)
                    numbers.append(row)
                else:
                    malformed.append(_field_count_error(row, cells, width))
        except csv.Error as exc:
            raise FileRejectedError("malformed_csv", f"row {row}: {exc}") from exc
        frame = pl.DataFrame(good, schema=dict.fromkeys(self._header, pl.String), orient="row")
        return self._numbered(frame, pl.Series(numbers, dtype=pl.Int64)), malformed


def _field_count_error(row: int, cells: list[str], width: int) -> RowError:
    return RowError(
        row=row,
        column="*",
        value=",".join(cells)[:200],
        reason="wrong_field_count",
        message=f"expected {width} fields, found {len(cells)}",
    )
