"""Digest normalisation and the classification of conflicting duplicates (lists in, lists out)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from consumers.conflicts import compare_with_first, find_conflicts, rows_to_look_up
from consumers.content_digest import COMPARED, differences, normalised, with_digests
from consumers.dedupe import classify
from consumers.event_hash import row_hashes
from tests.consumers.fnv import fnv1a

BASE = {
    "accountId": "acct", "pricingUnit": "API_CALL", "customUnit": None, "quantity": "12.5",
    "unitPrice": "0.10", "currency": "USD", "description": "calls", "billable": True,
    "eventDate": "2026-10-01T08:15:00.5+02:00", "subscriptionRef": None, "properties": None,
}  # fmt: skip
SCHEMA = {name: pl.Boolean if name == "billable" else pl.String for name in COMPARED}


def _digests(*rows: dict[str, Any]) -> list[int]:
    frame = pl.DataFrame([{**BASE, **row} for row in rows], schema=SCHEMA, orient="row")
    return with_digests(frame)["digest"].to_list()


def test_equal_content_written_differently_has_one_digest() -> None:
    same = _digests(
        {},
        {"quantity": "12.500", "unitPrice": "0.1"},
        {"quantity": "012.50", "unitPrice": "00.100"},
        {"eventDate": "2026-10-01T06:15:00.500Z"},  # the same UTC instant
    )
    assert len(set(same)) == 1


def test_the_digest_is_fnv1a_of_the_normalised_fields_written_out() -> None:
    # Stored digests are compared for as long as eventIds are kept: the formula is fixed.
    seconds = int(datetime.fromisoformat("2026-10-01T08:15:00+02:00").timestamp())
    text = f"4:acct|8:API_CALL|-|4:12.5|3:0.1|3:USD|5:calls|{len(str(seconds)) + 2}:{seconds}.5"
    assert _digests({"unitPrice": "00.10"}) == [fnv1a(f"{text}|4:true|-|-")]


# Plain decimals and texts of their characters that are not ("..", "0.0.", "").
_DECIMAL_TEXTS = st.from_regex(r"[0-9]{0,6}(\.[0-9]{0,6})?\Z") | st.text("0.15", max_size=8)


@given(st.lists(st.tuples(_DECIMAL_TEXTS, st.none() | _DECIMAL_TEXTS), min_size=1))
def test_the_digest_shortens_decimals_in_c_as_polars_normalises_them(
    amounts: list[tuple[str, str | None]],
) -> None:
    rows = [{**BASE, "quantity": quantity, "unitPrice": price} for quantity, price in amounts]
    frame = pl.DataFrame(rows, schema=SCHEMA, orient="row")
    reference = row_hashes(normalised(frame), "digest")  # every field written by polars
    assert with_digests(frame)["digest"].to_list() == reference.to_list()


def test_any_compared_change_changes_the_digest() -> None:
    changed = _digests(
        {},
        {"quantity": "12.51"},
        {"description": ""},  # null and empty differ, both ways
        {"description": None},
        {"eventDate": "2026-10-01T08:15:00.6+02:00"},
        {"eventDate": "2026-10-01T08:15:00.5+01:00"},
        {"billable": False},
        {"accountId": "acct2"},
        {"currency": "EUR"},
        {"pricingUnit": None, "customUnit": "API_CALL"},
        # Moving text between fields never collides: lengths are part of the digest.
        {"accountId": "acct|", "pricingUnit": "API_CALL"},
        {"accountId": "acct", "pricingUnit": "|API_CALL"},
    )
    assert len(set(changed)) == len(changed)


def test_differences_name_each_field_with_both_values_as_given() -> None:
    first = dict(BASE)
    this = {**BASE, "quantity": "12.500", "description": "other", "currency": "EUR"}
    assert differences(first, this) == [
        {"field": "currency", "first": "USD", "this": "EUR"},
        {"field": "description", "first": "calls", "this": "other"},
    ]
    assert differences(None, {"pricingUnit": "storage", "quantity": "3"}) == [
        {"field": "pricingUnit", "first": None, "this": "storage"},
        {"field": "quantity", "first": None, "this": "3"},
    ]


EVENTS = {
    "eventId": pl.String, "uploadRef": pl.String, "rowNumber": pl.Int64,
    "eventsPerRow": pl.Int32, "digest": pl.Int64, "kafkaPosition": pl.Int64,
}  # fmt: skip
KNOWN = {
    "eventId": pl.String, "uploadRef": pl.String, "rowNumber": pl.Int64,
    "digest": pl.Int64, "kafkaPosition": pl.Int64,
}  # fmt: skip
SETTLED = {"uploadRef": pl.String, "rowNumber": pl.Int64, "outcome": pl.String}


def _conflicts(
    events: list[tuple[Any, ...]], known: list[tuple[Any, ...]], siblings: list[tuple[Any, ...]]
) -> list[tuple[str, int, int | None]]:
    """(uploadRef, rowNumber, firstPosition) of each conflict; `siblings` are the store's
    settled `accepted` rows (uploadRef, rowNumber, digest, position)."""
    frame = pl.DataFrame(events, schema=EVENTS, orient="row")
    known_frame = pl.DataFrame(known, schema=KNOWN, orient="row")
    settled = pl.DataFrame(
        [(ref, row, "accepted") for ref, row, *_ in siblings], schema=SETTLED, orient="row"
    )
    classified = classify(frame, pl.DataFrame(schema=SETTLED).drop("outcome"), known_frame, settled)
    compared = compare_with_first(classified, known_frame)
    wanted = set(rows_to_look_up(compared).rows())
    store = pl.DataFrame(
        [s for s in siblings if (s[0], s[1]) in wanted],
        schema={k: KNOWN[k] for k in ("uploadRef", "rowNumber", "digest", "kafkaPosition")},
        orient="row",
    )
    found = find_conflicts(compared, classified, store)
    return found.select("uploadRef", "rowNumber", "firstPosition").rows()


def test_appdirect_duplicates_conflict_only_when_their_digest_differs() -> None:
    known = [("e1", "a", 2, 111, 7), ("e2", "a", 3, 222, 8), ("e3", "a", 4, None, 9)]
    events = [
        ("e1", "b", 2, 1, 111, 20),  # identical re-send
        ("e2", "b", 3, 1, 999, 21),  # changed
        ("e3", "b", 4, 1, 999, 22),  # first arrival kept no digest: never a conflict
        ("e4", "b", 5, 1, 444, 23),  # new
        ("e4", "b", 6, 1, 445, 24),  # changed copy of e4, first arrival in this batch
        ("e4", "b", 7, 1, 444, 25),  # identical copy
    ]
    assert _conflicts(events, known, []) == [("b", 3, 8), ("b", 6, 23)]


def test_a_solvimon_meter_value_is_compared_with_the_same_meter_of_the_first_row() -> None:
    # The first row (a, row 2) filled meters 1 and 2: meter 1 owns the eventId, meter 2 is
    # a settled sibling. Row 9 of b re-sends it: meter 1 the same, meter 2 changed, meter 3
    # filled where the first row left it empty.
    known = [("r", "a", 2001, 10, 5)]
    siblings = [("a", 2002, 20, 6)]
    events = [
        ("r", "b", 9001, 1000, 10, 30),
        ("r", "b", 9002, 1000, 21, 31),
        ("r", "b", 9003, 1000, 30, 32),
    ]
    assert _conflicts(events, known, siblings) == [("b", 9002, 6), ("b", 9003, None)]


def test_a_solvimon_re_send_in_the_same_batch_as_its_first_row() -> None:
    events = [
        ("r", "a", 2001, 1000, 10, 1),
        ("r", "a", 2002, 1000, 20, 2),
        ("r", "b", 5001, 1000, 10, 3),
        ("r", "b", 5002, 1000, 20, 4),
        ("s", "a", 3002, 1000, 40, 5),
        ("s", "b", 6002, 1000, 41, 6),
    ]
    assert _conflicts(events, [], []) == [("b", 6002, 5)]
