"""Billing periods: which month an event belongs to, and whether it may still count.

Periods are UTC calendar months. A period is open until an operator closes it, or, when
auto-close is on, until its end plus a grace period (the seed's DRAFT -> FINAL delay,
8 hours by default). A period on hold is never auto-closed; reopening one makes it open
for good. An event dated in a closed period is refused with `period_closed`; one dated
further in the future than the allowed clock skew with `event_in_future`. The same rules
run when a file is published and when an event is consumed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import polars as pl

from schemas.validation import RowError

__all__ = [
    "PeriodCalendar",
    "PeriodState",
    "StoredState",
    "apply_period_rules",
    "period_bounds",
]

StoredState = Literal["open", "closed", "hold"]
PeriodState = Literal["open", "grace", "hold", "closed"]
MONTH = "_month"
INSTANT = "_instant"


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


def _utc_instant(event_date: pl.Expr) -> pl.Expr:
    """The instant of a valid RFC 3339 eventDate, to the second, as a naive UTC datetime."""
    local = event_date.str.slice(0, 19).str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%S")
    offset = event_date.str.extract(r"([+-][0-9]{2}):([0-9]{2})$", 0)
    sign = pl.when(offset.str.starts_with("-")).then(-1).otherwise(1)
    minutes = offset.str.slice(1, 2).cast(pl.Int64) * 60 + offset.str.slice(4, 2).cast(pl.Int64)
    return local - pl.duration(minutes=(sign * minutes).fill_null(0))


def apply_period_rules(
    valid: pl.DataFrame, calendar: PeriodCalendar
) -> tuple[pl.DataFrame, pl.DataFrame, list[RowError]]:
    """Split valid rows into (still valid, refused, one RowError per refused row)."""
    dated = valid.with_columns(_utc_instant(pl.col("eventDate")).alias(INSTANT))
    dated = dated.with_columns(pl.col(INSTANT).dt.strftime("%Y-%m").alias(MONTH))
    months = dated[MONTH].drop_nulls().unique().to_list()
    closed = [month for month in months if calendar.state(month) == "closed"]
    latest = (calendar.now + calendar.future_skew).replace(tzinfo=None)
    reason = (
        pl.when(pl.col(MONTH).is_in(closed)).then(pl.lit("period_closed"))
        .when(pl.col(INSTANT) > latest).then(pl.lit("event_in_future"))
    )  # fmt: skip
    judged = dated.with_columns(reason.alias("_reason"))
    refused = judged.filter(pl.col("_reason").is_not_null())
    errors = [
        RowError(row=row, column="eventDate", value=value, reason=why,
                 message=_message(why, month, calendar))
        for row, value, why, month in refused.select(
            "rowNumber", "eventDate", "_reason", MONTH).iter_rows()
    ]  # fmt: skip
    kept = judged.filter(pl.col("_reason").is_null()).drop(INSTANT, MONTH, "_reason")
    return kept, refused.drop(INSTANT, MONTH, "_reason"), errors


def _message(reason: str, month: str, calendar: PeriodCalendar) -> str:
    if reason == "period_closed":
        return f"billing period {month} is closed: usage can no longer be ingested"
    hours = calendar.future_skew.total_seconds() / 3600
    return f"dated more than {hours:g} h in the future"
