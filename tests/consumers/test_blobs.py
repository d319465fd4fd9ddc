"""Frames stored as one blob come back as they went in (text as categories), whatever the layout."""

from __future__ import annotations

import polars as pl
from polars.testing import assert_frame_equal

from consumers.store.blobs import frame_from_blob, frame_to_blob
from tests.consumers.earlier_blobs import arrow_file

TOTALS = pl.DataFrame(
    {
        "accountId": ["a", "a", "b", None, "ü-ñ"],
        "pricingUnit": ["HOUR", "", "HOUR", "GB", ""],
        "events": pl.Series([1, 2, 3, 4, 5], dtype=pl.UInt32),
        "quantityHi": [0, -1, 2**62, 0, 7],
    }
)


def test_a_blob_gives_back_its_frame_with_text_as_categories() -> None:
    back = frame_from_blob(frame_to_blob(TOTALS))
    assert back.schema["accountId"] == back.schema["pricingUnit"] == pl.Categorical()
    assert_frame_equal(back.with_columns(pl.col(pl.Categorical).cast(pl.String)), TOTALS)


def test_rows_are_taken_in_the_order_asked() -> None:
    back = frame_from_blob(arrow_file(TOTALS), [4, 0, 2])
    assert_frame_equal(back, TOTALS[[4, 0, 2]])


def test_blobs_keep_repeated_text_once() -> None:
    repeated = pl.DataFrame({"accountId": ["a" * 36] * 10_000, "day": ["2026-10-01"] * 10_000})
    assert len(frame_to_blob(repeated)) < len(arrow_file(repeated)) / 5


def test_blobs_written_lz4_compressed_by_earlier_versions_still_read() -> None:
    assert_frame_equal(frame_from_blob(arrow_file(TOTALS, "lz4")), TOTALS)
