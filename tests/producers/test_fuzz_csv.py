"""Fuzz: arbitrary bytes through the header check, the chunker and the row validator.

A file may hold anything. Reading it must end in chunks of numbered string rows (bad
records as RowErrors) or in FileRejectedError, never another exception; and a well-formed
file must read back exactly, whatever the chunk size. Bounded to a few seconds each.
"""

from __future__ import annotations

import csv
import io

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterpipe.errors import FileRejectedError
from meterpipe.sample_data import HEADER
from producers.csv_chunks import CsvChunkReader
from producers.formats import APPDIRECT, FormatChooser
from schemas.validation import RowError

HEADER_LINE = (",".join(HEADER) + "\n").encode()
REJECTIONS = {"bad_header", "empty_file", "not_utf8", "malformed_csv"}
# Bytes that matter to CSV and UTF-8, plus anything at all.
CSV_BYTES = st.one_of(
    st.binary(max_size=300),
    st.lists(
        st.sampled_from([b",", b'"', b"\n", b"\r", b"\r\n", b"a", b"\xc3\xa9", b"\xff", b" "]),
        max_size=120,
    ).map(b"".join),
)
CHUNK_BYTES = st.integers(1, 64)
FUZZ = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def _read_all(data: bytes, chunk_bytes: int) -> tuple[list[pl.DataFrame], list[RowError]]:
    """Every chunk of `data` read as an AppDirect file, each also validated."""
    reader = CsvChunkReader(io.BytesIO(data), FormatChooser([APPDIRECT]), chunk_bytes)
    frames, errors = [], []
    for chunk in reader:
        assert chunk.frame.columns == [*HEADER, "rowNumber"]
        assert all(dtype == pl.String for dtype in chunk.frame.dtypes[:-1])
        result = APPDIRECT.validate(chunk.frame, max_errors=1000)
        frames.append(chunk.frame)
        errors += chunk.malformed + result.errors
    return frames, errors


def _read_or_rejection(
    data: bytes, chunk_bytes: int
) -> tuple[list[pl.DataFrame], list[RowError]] | FileRejectedError:
    try:
        return _read_all(data, chunk_bytes)
    except FileRejectedError as exc:
        return exc


def _assert_reads_or_is_rejected(data: bytes, chunk_bytes: int) -> None:
    outcome = _read_or_rejection(data, chunk_bytes)
    if isinstance(outcome, FileRejectedError):
        assert outcome.reason in REJECTIONS, outcome
        return
    frames, errors = outcome
    numbers = [n for frame in frames for n in frame["rowNumber"].to_list()]
    assert numbers == sorted(set(numbers))
    assert all(n >= 2 for n in numbers)
    for error in errors:
        assert error.row >= 2
        assert error.column in (*HEADER, "*")
        assert error.reason


@FUZZ
@given(CSV_BYTES, CHUNK_BYTES)
def test_any_bytes_as_a_whole_file(data: bytes, chunk_bytes: int) -> None:
    _assert_reads_or_is_rejected(data, chunk_bytes)


@FUZZ
@given(CSV_BYTES, CHUNK_BYTES)
def test_any_bytes_after_a_valid_header(data: bytes, chunk_bytes: int) -> None:
    _assert_reads_or_is_rejected(HEADER_LINE + data, chunk_bytes)


@FUZZ
@given(st.lists(st.text(max_size=20), max_size=15))
def test_any_header_is_accepted_exactly_or_rejected_naming_it(names: list[str]) -> None:
    if sorted(names) == sorted(HEADER):
        assert FormatChooser([APPDIRECT])(names) == APPDIRECT.columns
    else:
        with pytest.raises(FileRejectedError, match="header rejected") as rejected:
            FormatChooser([APPDIRECT])(names)
        assert rejected.value.reason == "bad_header"


CELL_TEXT = st.text(st.sampled_from(list('ab,"\n\r é')), min_size=1, max_size=12)


@FUZZ
@given(st.lists(st.lists(CELL_TEXT, min_size=3, max_size=3), max_size=30), CHUNK_BYTES)
def test_a_well_formed_file_reads_back_exactly_at_any_chunk_size(
    rows: list[list[str]], chunk_bytes: int
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER[:3])
    writer.writerows(rows)
    columns = HEADER[:3]
    reader = CsvChunkReader(io.BytesIO(buffer.getvalue().encode()), lambda _: columns, chunk_bytes)
    read = [row for chunk in reader for row in chunk.frame.select(columns).rows()]
    assert read == [tuple(row) for row in rows]


def test_regression_a_chunk_of_only_malformed_rows_keeps_string_columns() -> None:
    """Found by the fuzzer: the csv-module fallback built an empty frame of Null columns."""
    frames, errors = _read_all(HEADER_LINE + b"\x00\n", chunk_bytes=1)
    assert [frame.height for frame in frames] == [0]
    assert [(error.row, error.reason) for error in errors] == [(2, "wrong_field_count")]
