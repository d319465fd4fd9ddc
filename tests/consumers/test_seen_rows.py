"""Seen blocks give back exactly the rows asked for, reading only those rows."""

from __future__ import annotations

import contextlib
import sqlite3
from unittest import mock

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from consumers.content_digest import FIRST_ARRIVAL
from consumers.store import seen_rows
from consumers.store.seen_rows import SEEN_SCHEMA, pack_seen_rows, read_seen_rows
from tests.consumers.earlier_blobs import arrow_file

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
ROWS = st.tuples(
    st.text(min_size=1, max_size=12),
    st.one_of(st.none(), st.sampled_from(["u-1", "u-2", "ü-3"])),
    st.one_of(st.none(), INT64),
    INT64,
    INT64,
)
NO_FIRST_ARRIVAL = [pl.lit(None, pl.Int64).alias(name) for name in FIRST_ARRIVAL]


class _CountingBlob:
    """A block read through slices, counting the bytes each slice returns."""

    def __init__(self, data: bytes) -> None:
        self.data, self.bytes_read = data, 0

    def __getitem__(self, index: slice) -> bytes:
        part = self.data[index]
        self.bytes_read += len(part)
        return part


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(ROWS, min_size=1, max_size=80),
    picks=st.lists(st.integers(0, 10**6)),
    with_digests=st.booleans(),
)
def test_any_rows_come_back_in_the_order_asked_whichever_way_they_are_read(
    rows: list[tuple[str, str | None, int | None, int, int]], picks: list[int], with_digests: bool
) -> None:
    """Frames with digests take the current layout; without, the one before (nulls back)."""
    frame = pl.DataFrame(rows, schema=SEEN_SCHEMA, orient="row")
    if not with_digests:
        frame = frame.with_columns(NO_FIRST_ARRIVAL)
    positions = [pick % frame.height for pick in picks]
    packed = pack_seen_rows(frame if with_digests else frame.drop(FIRST_ARRIVAL))
    assert packed[:4] == (b"MPS2" if with_digests else b"MPSR")
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        db.execute("CREATE TABLE blocks (id INTEGER PRIMARY KEY, events BLOB)")
        db.execute("INSERT INTO blocks VALUES (1, ?)", (packed,))
        for share in (0.0, 1e9):  # always whole, always row by row
            with mock.patch.object(seen_rows, "WHOLE_READ_SHARE", share):
                assert_frame_equal(read_seen_rows(packed, positions), frame[positions])
                with db.blobopen("blocks", "events", 1, readonly=True) as blob:
                    assert_frame_equal(read_seen_rows(blob, positions), frame[positions])


def test_a_few_rows_are_read_without_reading_the_block() -> None:
    frame = pl.DataFrame(
        {
            "eventId": [f"event-{n:032d}" for n in range(20_000)],
            "uploadRef": ["u-1"] * 20_000,
            "rowNumber": range(2, 20_002),
            "digest": range(20_000),
            "kafkaPosition": range(20_000, 40_000),
        }
    )
    blob = _CountingBlob(pack_seen_rows(frame))
    assert_frame_equal(read_seen_rows(blob, [19_999, 7, 12_345]), frame[[19_999, 7, 12_345]])
    assert blob.bytes_read < 1_000 < len(blob.data) // 1000


def test_blocks_written_by_earlier_versions_as_arrow_files_still_read() -> None:
    frame = pl.DataFrame(
        {"eventId": ["a", "b", "c"], "uploadRef": ["u-1", None, "u-1"], "rowNumber": [2, 3, None]}
    )
    expected = frame[[2, 0]].with_columns(NO_FIRST_ARRIVAL)
    assert_frame_equal(read_seen_rows(arrow_file(frame), [2, 0]), expected)
