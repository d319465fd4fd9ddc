"""Duplicates versus redeliveries, decided from what the store already knows."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.dedupe import classify
from consumers.store.frames import PROVENANCE_SCHEMA, SETTLED_SCHEMA, progress_by_upload

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
    progress = progress_by_upload(revived, _frame()).rows(named=True)
    assert progress == [
        {"uploadRef": "u", "accepted": 1, "duplicates": 0, "dead_lettered": -1, "conflicts": 0}
    ]
    # Without the replay mark, a dead-lettered row seen again is only a redelivery.
    plain = classify(events.drop("replayed"), _provenance(), _frame(), settled)
    assert (plain.accepted.height, plain.redelivered, plain.revived.height) == (0, 2, 0)


Row = tuple[str, str | None, int | None, bool, int]  # eventId, uploadRef, rowNumber, replayed,
# eventsPerRow
Provenance = tuple[str | None, int | None]


def _reference(
    events: list[Row],
    letters: list[Provenance],
    known: dict[str, Provenance],
    settled: dict[Provenance, str],
) -> tuple[list[int], list[int], list[int], list[Provenance], list[Provenance], list[Provenance]]:
    """classify() restated one row at a time, from the rules in consumers/dedupe.py.

    Returns the positions of the accepted and duplicate events, the positions of the dead
    letters kept, the revived provenance, the letters kept, and the accepted siblings (not
    their eventId's first event); nothing else is counted.
    """
    fresh: list[int] = []
    copies: set[Provenance] = set()
    for position, (event_id, ref, row, replayed, _) in enumerate(events):
        first_copy = ref is None or (ref, row) not in copies
        copies.add((ref, row))
        # A provenance with a null part never matches a settled row (as a join on nulls).
        outcome = settled.get((ref, row)) if None not in (ref, row) else None
        still_open = outcome is None or (replayed and outcome == "dead_letter")
        # Without provenance (either part null) an event is never the same event again.
        complete = ref is not None and row is not None
        same_event = complete and known.get(event_id) == (ref, row)
        if first_copy and still_open and not same_event:
            fresh.append(position)
    first_source: dict[str, tuple[str, int] | None] = {}
    accepted: list[int] = []
    siblings: list[Provenance] = []
    duplicates: list[int] = []
    revived: list[Provenance] = []
    for position in fresh:
        event_id, ref, row, _, per_row = events[position]
        source = (ref, row // per_row) if ref is not None and row is not None else None
        if event_id in known:  # counts only as a sibling of the owner's source row
            owner_ref, owner_row = known[event_id]
            owner = (owner_ref, owner_row // per_row) if owner_row is not None else None
            new = source is not None and source == owner
        elif event_id not in first_source:  # the first row to bring it owns it
            first_source[event_id] = source
            new = True
        else:
            new = source is not None and source == first_source[event_id]
            if new:
                siblings.append((ref, row))
        if new and event_id in known:
            siblings.append((ref, row))
        (accepted if new else duplicates).append(position)
        if ref is not None and row is not None and settled.get((ref, row)) == "dead_letter":
            revived.append((ref, row))
    kept_letters: list[int] = []
    letter_copies: set[Provenance] = set()
    for position, provenance in enumerate(letters):
        first_copy = provenance[0] is None or provenance not in letter_copies
        letter_copies.add(provenance)
        unsettled = None in provenance or provenance not in settled
        if first_copy and unsettled:
            kept_letters.append(position)
    return accepted, duplicates, kept_letters, revived, [letters[i] for i in kept_letters], siblings


IDS = st.sampled_from(["e1", "e2", "e3", "e4"])
REFS = st.one_of(st.none(), st.sampled_from(["u", "v"]))
# Rows as AppDirect numbers them, and as Solvimon numbers a row's meters (row 2, meter 1).
ROWS = st.one_of(st.none(), st.sampled_from([2, 3, 4, 2001, 2002, 3001]))
PER_ROW = st.sampled_from([1, 1000])


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(st.tuples(IDS, REFS, ROWS, st.booleans(), PER_ROW), max_size=12),
    letters=st.lists(st.tuples(REFS, ROWS), max_size=4),
    known=st.dictionaries(IDS, st.tuples(REFS, ROWS), max_size=3),
    settled=st.dictionaries(
        st.tuples(st.sampled_from(["u", "v"]), st.integers(2, 5)),
        st.sampled_from(["duplicate", "dead_letter", "accepted"]),
        max_size=4,
    ),
)
def test_classify_agrees_with_a_row_by_row_restatement(
    events: list[Row],
    letters: list[Provenance],
    known: dict[str, Provenance],
    settled: dict[Provenance, str],
) -> None:
    """Ground truth for the columnar classify(), to hold it steady while it is optimised."""
    frame = pl.DataFrame(
        events,
        schema={**EVENTS, "replayed": pl.Boolean, "eventsPerRow": pl.Int32},
        orient="row",
    ).with_columns(pl.int_range(pl.len()).alias("position"))
    result = classify(
        frame,
        pl.DataFrame(letters, schema=PROVENANCE_SCHEMA, orient="row"),
        _frame(*((event_id, *provenance) for event_id, provenance in known.items())),
        pl.DataFrame(
            [(*provenance, outcome) for provenance, outcome in settled.items()],
            schema=SETTLED_SCHEMA,
            orient="row",
        ),
    )
    accepted, duplicates, kept, revived, letter_rows, siblings = _reference(
        events, letters, known, settled
    )
    assert result.accepted["position"].to_list() == accepted
    assert result.siblings.rows() == siblings
    claimed = [p for p in accepted if (events[p][1], events[p][2]) not in siblings]
    assert result.claimed["position"].to_list() == claimed
    assert result.duplicates["position"].to_list() == duplicates
    assert result.dead_lettered.rows() == letter_rows
    assert result.revived.rows() == revived
    counted = len(accepted) + len(duplicates) + len(kept)
    assert result.redelivered == len(events) + len(letters) - counted


def _solvimon(*rows: tuple[str, str, int]) -> pl.DataFrame:
    """Events of Solvimon rows: meter k of row r is numbered r * 1000 + k."""
    return _frame(*rows).with_columns(pl.lit(1000, pl.Int32).alias("eventsPerRow"))


def test_the_meter_values_of_one_row_all_count_and_another_row_counts_none() -> None:
    events = _solvimon(("ref", "u", 2001), ("ref", "u", 2002), ("ref", "v", 5001))
    result = classify(events, _provenance(), _frame(), _settled())
    assert result.accepted["rowNumber"].to_list() == [2001, 2002]
    assert result.claimed["rowNumber"].to_list() == [2001]
    assert result.siblings.rows() == [("u", 2002)]
    assert result.duplicates["rowNumber"].to_list() == [5001]


def test_a_meter_value_of_the_owning_row_counts_in_a_later_batch_once() -> None:
    known = _frame(("ref", "u", 2001))
    events = _solvimon(("ref", "u", 2003), ("ref", "w", 7001), ("ref", "w", 7003))
    result = classify(events, _provenance(), known, _settled())
    assert result.accepted["rowNumber"].to_list() == [2003]
    assert result.claimed.height == 0
    assert result.siblings.rows() == [("u", 2003)]
    assert result.duplicates["rowNumber"].to_list() == [7001, 7003]
    again = classify(events.head(1), _provenance(), known, _settled(("u", 2003, "accepted")))
    assert (again.accepted.height, again.duplicates.height, again.redelivered) == (0, 0, 1)
