"""Billing periods: UTC calendar months, and the state each is in at a given moment.

A period is open until an operator closes it, or, when auto-close is on, until its end
plus a grace period (the seed's DRAFT -> FINAL delay, 8 hours by default). A period on
hold is never auto-closed; reopening one makes it open for good. The rules that refuse
events by these states are `schemas.periods`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal, cast

if TYPE_CHECKING:  # annotations only: reading the calendar loads no pydantic
    from meterpipe.settings import PeriodSettings

__all__ = [
    "PERIOD_PATTERN",
    "PeriodCalendar",
    "PeriodState",
    "StoredState",
    "normalised_period",
    "period_bounds",
]

StoredState = Literal["open", "closed", "hold"]
PeriodState = Literal["open", "grace", "hold", "closed"]
# The canonical spelling, for interfaces that state it (the HTTP API's schema); the years a
# period may have are normalised_period's to judge.
PERIOD_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"


def normalised_period(text: str) -> str | None:
    """`text` as a `YYYY-MM` period (a one-digit month padded), or None if it names none.

    Years run from 0001 to 9998: a period's bounds must be instants Python can hold, and the
    end of 9999-12 is not.
    """
    year, _, month = text.partition("-")
    digits = text.isascii() and year.isdigit() and month.isdigit()  # not other scripts' digits
    if not (digits and len(year) == 4 and len(month) <= 2):
        return None
    if not (1 <= int(year) <= 9998 and 1 <= int(month) <= 12):
        return None
    return f"{year}-{int(month):02d}"


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """Start and end (exclusive) of a `YYYY-MM` period, in UTC."""
    year, month = int(period[:4]), int(period[5:7])
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return start, end


@dataclass(frozen=True)
class PeriodCalendar:
    """The states operators set, and the auto-close and skew rules, at one moment."""

    stored: Mapping[str, StoredState]
    now: datetime
    auto_close: bool = False
    grace: timedelta = timedelta(hours=8)
    future_skew: timedelta = timedelta(hours=24)

    @classmethod
    def of(
        cls, settings: PeriodSettings, stored: Mapping[str, str], now: datetime
    ) -> PeriodCalendar:
        """The configured rules as they stand at `now`, with the states operators set."""
        return cls(
            stored=cast(Mapping[str, StoredState], stored),
            now=now,
            auto_close=settings.auto_close_periods,
            grace=timedelta(hours=settings.period_grace_hours),
            future_skew=timedelta(hours=settings.future_skew_hours),
        )

    def state(self, period: str) -> PeriodState:
        """The effective state of a period now."""
        stored = self.stored.get(period)
        if stored in ("closed", "hold"):
            return stored
        _, end = period_bounds(period)
        if self.now < end:
            return "open"
        if stored is None and self.auto_close and self.now >= end + self.grace:
            return "closed"
        return "grace" if stored is None and self.now < end + self.grace else "open"
