"""Assigned eventIds: deterministic per (upload key, row), given ids untouched, and each the
standard library's `uuid.uuid5` of its name."""

from __future__ import annotations

import uuid

import numpy as np
import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from producers.event_ids import EVENT_ID_NAMESPACE, assign_event_ids, event_ids_for, uuid5_texts


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
    assert event_ids_for(key, rows).to_list() == _uuid5s(key, rows)
    assert event_ids_for(key, np.array(rows, dtype=np.int64)).to_list() == _uuid5s(key, rows)


@given(names=st.lists(st.text()))
def test_any_names_give_the_standard_librarys_uuid5(names: list[str]) -> None:
    namespace = uuid.uuid5(EVENT_ID_NAMESPACE, "other")
    expected = [str(uuid.uuid5(namespace, name)) for name in names]
    assert uuid5_texts(namespace, [name.encode() for name in names]).to_list() == expected
