"""Assigned eventIds: deterministic per (upload key, row), given ids untouched."""

from __future__ import annotations

import uuid

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from producers.event_ids import EVENT_ID_NAMESPACE, assign_event_ids, event_ids_for


def test_empty_ids_become_uuid5_of_key_and_row_and_given_ids_stay() -> None:
    frame = pl.DataFrame({"eventId": ["given", None, ""], "rowNumber": [2, 3, 4]})
    first = assign_event_ids(frame, "key-1")
    assert first["eventId"].to_list() == [
        "given",
        str(uuid.uuid5(EVENT_ID_NAMESPACE, "key-1:3")),
        str(uuid.uuid5(EVENT_ID_NAMESPACE, "key-1:4")),
    ]
    assert first["eventIdAssigned"].to_list() == [False, True, True]
    assert assign_event_ids(frame, "key-1").equals(first)
    assert assign_event_ids(frame, "key-2")["eventId"][1] != first["eventId"][1]


@given(key=st.text(), rows=st.lists(st.integers(min_value=0, max_value=2**40), max_size=20))
def test_assigned_ids_are_the_standard_librarys_uuid5(key: str, rows: list[int]) -> None:
    expected = [str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{key}:{row}")) for row in rows]
    assert event_ids_for(key, rows) == expected
