"""Chunked CSV reading: record-aligned cuts, numbering, header and encoding checks."""

from __future__ import annotations

import csv
import io
import re

import polars as pl
import pytest

from meterpipe.errors import FileRejectedError
from producers.csv_chunks import CsvChunkReader
from producers.formats import header_problems

COLUMNS = ("a", "b", "c")


def _accept(header: list[str]) -> tuple[str, ...]:
    problems = header_problems(header, COLUMNS)
    if problems:
        raise FileRejectedError("bad_header", "header rejected: " + "; ".join(problems))
    return COLUMNS


def _read(data: bytes, chunk_bytes: int = 1024) -> tuple[pl.DataFrame, list[tuple[int, str]]]:
    reader = CsvChunkReader(io.BytesIO(data), _accept, chunk_bytes)
    chunks = list(reader)
    frame = pl.concat([chunk.frame for chunk in chunks])
    return frame, [(e.row, e.reason) for chunk in chunks for e in chunk.malformed]


def test_small_chunks_never_split_a_quoted_record() -> None:
    # Unquoted stretches between quoted ones: chunks with no quote take the shortcut.
    rows = [
        [f"x{i}", f'multi\nline "quoted", {i}' if i // 100 % 2 else f"plain {i:040}", str(i)]
        for i in range(300)
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    frame, malformed = _read(buffer.getvalue().encode(), chunk_bytes=1024)
    assert malformed == []
    assert frame["b"].to_list() == [row[1] for row in rows]
    assert frame["rowNumber"].to_list() == list(range(2, 302))


def test_bom_crlf_and_any_column_order() -> None:
    frame, _ = _read(b"\xef\xbb\xbfc,a,b\r\n3,1,2\r\n6,4,5\r\n")
    assert frame.select(COLUMNS).rows() == [("1", "2", "3"), ("4", "5", "6")]


def test_blank_lines_are_skipped_but_keep_spreadsheet_numbering() -> None:
    frame, _ = _read(b"a,b,c\n1,2,3\n\n7,8,9\n")
    assert frame["rowNumber"].to_list() == [2, 4]


def test_rows_with_too_many_fields_are_named() -> None:
    frame, malformed = _read(b"a,b,c\n1,2,3\n4,5,6,7\n8,9,10\n", chunk_bytes=1024)
    assert malformed == [(3, "wrong_field_count")]
    assert frame["rowNumber"].to_list() == [2, 4]


@pytest.mark.parametrize(
    ("header", "named"),
    [
        (b"a,b\n", "missing column(s): c"),
        (b"a,b,c,d\n", "unknown column(s): 'd'"),
        (b"a,b,c,a\n", "repeated column(s): a"),
    ],
)
def test_bad_header_names_the_column(header: bytes, named: str) -> None:
    with pytest.raises(FileRejectedError, match=re.escape(named)) as caught:
        _read(header + b"1,2,3\n")
    assert caught.value.reason == "bad_header"


def test_invalid_utf8_names_the_byte_offset() -> None:
    data = b"a,b,c\n1,2,3\n4,\xff,6\n"
    with pytest.raises(FileRejectedError, match="offset 14") as caught:
        _read(data)
    assert caught.value.reason == "not_utf8"


def test_sha256_covers_every_byte() -> None:
    import hashlib

    data = b"a,b,c\n" + b"1,2,3\n" * 5000
    reader = CsvChunkReader(io.BytesIO(data), _accept, 1024)
    for _ in reader:
        pass
    assert reader.sha256 == hashlib.sha256(data).hexdigest()
