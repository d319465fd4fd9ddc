"""Billing-period states and the rules that refuse late and early usage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from schemas.period_calendar import PeriodCalendar, normalised_period, period_bounds
from schemas.periods import INSTANT, apply_period_rules
from schemas.validation import utc_instant

NOW = datetime(2026, 11, 1, 5, 0, tzinfo=UTC)  # 5 h into November


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-07", "2026-07"), ("2026-7", "2026-07"), ("0001-01", "0001-01"),
        ("9998-12", "9998-12"), ("0000-01", None), ("9999-12", None), ("2026-13", None),
        ("2026-00", None), ("2026-007", None), ("26-07", None), ("2026/07", None),
        ("２０２６-07", None), ("", None),
    ],
)  # fmt: skip
def test_a_period_names_a_month_whose_bounds_exist(text: str, expected: str | None) -> None:
    assert normalised_period(text) == expected
    if expected is not None:
        start, end = period_bounds(expected)
        assert start < end


def test_period_bounds_cross_the_year() -> None:
    assert period_bounds("2026-12") == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("stored", "auto_close", "now", "expected"),
    [
        ({}, False, NOW, "grace"),
        ({}, True, NOW, "grace"),
        ({}, True, NOW + timedelta(hours=3), "closed"),
        ({}, False, NOW + timedelta(days=30), "open"),
        ({"2026-10": "hold"}, True, NOW + timedelta(days=30), "hold"),
        ({"2026-10": "open"}, True, NOW + timedelta(days=30), "open"),
        ({"2026-10": "closed"}, False, NOW, "closed"),
        ({}, True, datetime(2026, 10, 31, 23, 0, tzinfo=UTC), "open"),
    ],
)
def test_october_state(
    stored: dict[str, str], auto_close: bool, now: datetime, expected: str
) -> None:
    calendar = PeriodCalendar(stored=stored, now=now, auto_close=auto_close)  # type: ignore[arg-type]
    assert calendar.state("2026-10") == expected


@pytest.mark.parametrize("supplied", [False, True], ids=["computed", "supplied"])
def test_closed_period_and_future_events_are_refused_by_their_utc_instant(supplied: bool) -> None:
    rows = pl.DataFrame(
        {
            "rowNumber": [2, 3, 4, 5, 6],
            "eventDate": [
                "2026-10-31T23:30:00Z",  # October: closed
                "2026-11-01T00:30:00+02:00",  # 2026-10-31T22:30Z: October too
                "2026-10-31T23:30:00-01:00",  # 2026-11-01T00:30Z: November, open
                "2026-11-02T04:59:59Z",  # within the 24 h skew
                "2026-11-02T05:00:01Z",  # beyond it
            ],
        }
    )
    if supplied:  # as the consumer does, which needs each instant for its UTC day
        rows = rows.with_columns(utc_instant(pl.col("eventDate")).alias(INSTANT))
    calendar = PeriodCalendar(stored={"2026-10": "closed"}, now=NOW)
    kept, refused, errors = apply_period_rules(rows, calendar)
    assert kept.columns == refused.columns == rows.columns
    assert kept["rowNumber"].to_list() == [4, 5]
    assert refused["rowNumber"].to_list() == [2, 3, 6]
    assert [(e.row, e.column, e.reason) for e in errors] == [
        (2, "eventDate", "period_closed"),
        (3, "eventDate", "period_closed"),
        (6, "eventDate", "event_in_future"),
    ]


# Most moments within a day and a half of a month's start, where offsets change the month.
MONTH_STARTS = [datetime(2026, month, 1) for month in (9, 10, 11, 12)]
MOMENTS = st.one_of(
    st.datetimes(datetime(2026, 8, 25), datetime(2026, 12, 5)),
    st.builds(
        lambda start, minutes: start + timedelta(minutes=minutes),
        st.sampled_from(MONTH_STARTS),
        st.integers(-36 * 60, 36 * 60),
    ),
)
OFFSETS = st.sampled_from(["Z", "+00:00", "+02:00", "-05:30", "+23:59", "-23:59", "+14:00"])


@settings(max_examples=300, deadline=None)
@given(
    dates=st.lists(st.tuples(MOMENTS, OFFSETS), min_size=1, max_size=8),
    closed=st.sets(st.sampled_from(["2026-08", "2026-09", "2026-10", "2026-11", "2026-12"])),
    now=st.one_of(MOMENTS, st.datetimes(datetime(2026, 12, 6), datetime(2027, 1, 31))),
    auto_close=st.booleans(),
)
# Local October, UTC November (closed), and the reverse: the offset decides the month.
@example([(datetime(2026, 10, 31, 23, 30), "-05:30")], {"2026-11"}, datetime(2026, 12, 9), False)
@example([(datetime(2026, 11, 1, 13, 0), "+14:00")], {"2026-10"}, datetime(2026, 12, 9), False)
# Local time within the 24 h skew, its UTC instant beyond it.
@example([(datetime(2026, 12, 10, 0, 0), "-05:00")], set(), datetime(2026, 12, 9), False)
def test_rules_judged_from_the_text_agree_with_the_rules_judged_by_instants(
    dates: list[tuple[datetime, str]], closed: set[str], now: datetime, auto_close: bool
) -> None:
    """Without instants supplied, a file whose dates are clearly allowed skips working them
    out; whichever way, the outcome is the one the exact instants give."""
    event_dates = [f"{moment:%Y-%m-%dT%H:%M:%S}{offset}" for moment, offset in dates]
    rows = pl.DataFrame({"rowNumber": range(2, len(dates) + 2), "eventDate": event_dates})
    calendar = PeriodCalendar(
        stored=dict.fromkeys(closed, "closed"), now=now.replace(tzinfo=UTC), auto_close=auto_close
    )
    kept, refused, errors = apply_period_rules(rows, calendar)
    exact = rows.with_columns(utc_instant(pl.col("eventDate")).alias(INSTANT))
    exact_kept, exact_refused, exact_errors = apply_period_rules(exact, calendar)
    assert kept.equals(exact_kept.drop(INSTANT))
    assert refused.equals(exact_refused.drop(INSTANT))
    assert errors == exact_errors
