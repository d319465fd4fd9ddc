"""Duplicates versus redeliveries, decided from what the store already knows."""

from __future__ import annotations

import polars as pl

from consumers.dedupe import classify

EVENTS = {"eventId": pl.String, "uploadRef": pl.String, "rowNumber": pl.Int64}


def _frame(*rows: tuple[str | None, str | None, int | None]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=EVENTS, orient="row")


def _provenance(*rows: tuple[str, int]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"uploadRef": pl.String, "rowNumber": pl.Int64}, orient="row")


def test_first_copy_in_the_batch_wins_and_later_ones_are_duplicates() -> None:
    events = _frame(("e1", "u", 2), ("e2", "u", 3), ("e1", "u", 4))
    result = classify(events, _provenance(), _frame(), _provenance())
    assert result.accepted["rowNumber"].to_list() == [2, 3]
    assert result.duplicates["rowNumber"].to_list() == [4]
    assert result.redelivered == 0


def test_same_event_again_is_a_redelivery_not_a_duplicate() -> None:
    events = _frame(("e1", "u", 2), ("e1", "u", 2), ("e9", "v", 7))
    known = _frame(("e1", "u", 2))
    result = classify(events, _provenance(), known, _provenance())
    assert result.accepted["eventId"].to_list() == ["e9"]
    assert result.duplicates.height == 0
    assert result.redelivered == 2


def test_known_id_from_another_row_is_a_duplicate_once() -> None:
    events = _frame(("e1", "v", 5))
    known = _frame(("e1", "u", 2))
    first = classify(events, _provenance(), known, _provenance())
    assert first.duplicates["rowNumber"].to_list() == [5]
    again = classify(events, _provenance(), known, _provenance(("v", 5)))
    assert again.duplicates.height == 0
    assert again.redelivered == 1


def test_events_without_provenance_are_never_redeliveries() -> None:
    events = _frame(("e1", None, None), ("e1", None, None))
    known = _frame(("e1", None, None))
    result = classify(events, _provenance(), known, _provenance())
    assert result.accepted.height == 0
    assert result.duplicates.height == 2


def test_dead_letters_count_once_per_row() -> None:
    letters = _provenance(("u", 3), ("u", 3), ("u", 4))
    result = classify(_frame(), letters, _frame(), _provenance(("u", 4)))
    assert result.dead_lettered.rows() == [("u", 3)]
    assert result.redelivered == 2
