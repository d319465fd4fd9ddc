"""Tests of schemas.event_dates: the C pass over eventDate texts and how it is handed text.

Which texts are eventDates, and their instants, are held to the pydantic model and to
Python's own conversion in test_validation.py; here: columns that do not start at their
buffer's first string, nulls, and what the C side refuses.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest

from schemas._event_dates import judge_event_dates
from schemas.event_dates import breaks_event_dates, utc_instants

TEXTS = ["2026-07-16T19:20:30Z", None, "2026-02-30T00:00:00Z", "2026-07-16T19:20:30.5-02:00"]


def test_a_slice_with_nulls_is_judged_row_for_row() -> None:
    # Padding before and after: the slice starts inside the column's buffers.
    column = pl.Series("eventDate", ["1999-01-01T00:00:00Z", *TEXTS, "x"])[1:-1]
    assert utc_instants(column).to_list() == [
        datetime(2026, 7, 16, 19, 20, 30), None, None, datetime(2026, 7, 16, 21, 20, 30),
    ]  # fmt: skip
    assert breaks_event_dates(column, required=True).to_list() == [False, True, True, False]
    assert breaks_event_dates(column, required=False).to_list() == [False, False, True, False]


@pytest.mark.parametrize(
    "bounds",
    [[0, 5, 3], [0, 25], [-1, 4], []],
    ids=["falling", "past the data", "negative", "not even one"],
)
def test_the_c_pass_refuses_bounds_outside_the_data(bounds: list[int]) -> None:
    with pytest.raises(ValueError, match="bounds"):
        judge_event_dates(np.array(bounds, dtype=np.int64), b"2026-07-16T19:20:30Z")
