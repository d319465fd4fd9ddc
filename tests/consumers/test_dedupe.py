"""Duplicates versus redeliveries, decided from what the store already knows."""

from __future__ import annotations

import polars as pl

from consumers.dedupe import classify
from consumers.store.frames import SETTLED_SCHEMA, progress_by_upload

EVENTS = {"eventId": pl.String, "uploadRef": pl.String, "rowNumber": pl.Int64}


def _frame(*rows: tuple[str | None, str | None, int | None]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=EVENTS, orient="row")


def _provenance(*rows: tuple[str, int]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"uploadRef": pl.String, "rowNumber": pl.Int64}, orient="row")


def _settled(*rows: tuple[str, int, str]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=SETTLED_SCHEMA, orient="row")


def test_first_copy_in_the_batch_wins_and_later_ones_are_duplicates() -> None:
    events = _frame(("e1", "u", 2), ("e2", "u", 3), ("e1", "u", 4))
    result = classify(events, _provenance(), _frame(), _settled())
    assert result.accepted["rowNumber"].to_list() == [2, 3]
    assert result.duplicates["rowNumber"].to_list() == [4]
    assert result.redelivered == 0


def test_same_event_again_is_a_redelivery_not_a_duplicate() -> None:
    events = _frame(("e1", "u", 2), ("e1", "u", 2), ("e9", "v", 7))
    known = _frame(("e1", "u", 2))
    result = classify(events, _provenance(), known, _settled())
    assert result.accepted["eventId"].to_list() == ["e9"]
    assert result.duplicates.height == 0
    assert result.redelivered == 2


def test_known_id_from_another_row_is_a_duplicate_once() -> None:
    events = _frame(("e1", "v", 5))
    known = _frame(("e1", "u", 2))
    first = classify(events, _provenance(), known, _settled())
    assert first.duplicates["rowNumber"].to_list() == [5]
    again = classify(events, _provenance(), known, _settled(("v", 5, "duplicate")))
    assert again.duplicates.height == 0
    assert again.redelivered == 1


def test_events_without_provenance_are_never_redeliveries() -> None:
    events = _frame(("e1", None, None), ("e1", None, None))
    known = _frame(("e1", None, None))
    result = classify(events, _provenance(), known, _settled())
    assert result.accepted.height == 0
    assert result.duplicates.height == 2


def test_dead_letters_count_once_per_row() -> None:
    letters = _provenance(("u", 3), ("u", 3), ("u", 4))
    result = classify(_frame(), letters, _frame(), _settled(("u", 4, "dead_letter")))
    assert result.dead_lettered.rows() == [("u", 3)]
    assert result.redelivered == 2


def test_replayed_dead_letter_is_revived_once_and_plain_redelivery_is_not() -> None:
    settled = _settled(("u", 2, "dead_letter"), ("u", 3, "duplicate"))
    events = _frame(("e2", "u", 2), ("e3", "u", 3)).with_columns(
        pl.Series("replayed", [True, True])
    )
    revived = classify(events, _provenance(), _frame(), settled)
    # Row 2 was dead-lettered: now valid, it counts and leaves the dead-lettered count.
    assert revived.accepted["rowNumber"].to_list() == [2]
    assert revived.revived.rows() == [("u", 2)]
    # Row 3 was already counted (as a duplicate): a replay changes nothing.
    assert revived.redelivered == 1
    progress = progress_by_upload(revived).rows(named=True)
    assert progress == [{"uploadRef": "u", "accepted": 1, "duplicates": 0, "dead_lettered": -1}]
    # Without the replay mark, a dead-lettered row seen again is only a redelivery.
    plain = classify(events.drop("replayed"), _provenance(), _frame(), settled)
    assert (plain.accepted.height, plain.redelivered, plain.revived.height) == (0, 2, 0)
