"""Assigned eventIds: deterministic per (upload key, row), given ids untouched."""

from __future__ import annotations

import uuid

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from producers._event_ids import uuid5_texts
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


def _uuid5s(key: str, rows: list[int]) -> list[str]:
    return [str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{key}:{row}")) for row in rows]


@given(key=st.text(), rows=st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1)))
def test_assigned_ids_are_the_standard_librarys_uuid5(key: str, rows: list[int]) -> None:
    assert event_ids_for(key, rows) == _uuid5s(key, rows)


def test_assigned_ids_for_names_across_sha1_block_boundaries() -> None:
    # SHA-1 pads in 64-byte blocks: the name's tail (after the 16-byte namespace) ends on
    # either side of each boundary, with a long key hashed a block ahead.
    rows = [0, 7, 10, 99_999, 2**62]
    for length in range(200):
        key = "k" * length
        assert event_ids_for(key, rows) == _uuid5s(key, rows), length


def test_rows_must_be_whole_int64s() -> None:
    with pytest.raises(ValueError, match="int64"):
        uuid5_texts(b"prefix", np.zeros(3, np.int8))
