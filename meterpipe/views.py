"""The JSON objects the CLI's `--json` prints and the HTTP API returns, built in one place."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from consumers.store import StoreLedger
from consumers.store.reports import summarize_totals
from schemas.period_calendar import PeriodCalendar, period_bounds

if TYPE_CHECKING:  # annotations only: `total_objects` serves commands that load no pydantic
    from meterpipe.settings import Settings

__all__ = ["period_object", "period_objects", "total_objects"]


def period_object(settings: Settings, stored: dict[str, str], period: str) -> dict[str, Any]:
    """One period of `meterpipe periods list --json`: its state now and when it ends."""
    calendar = PeriodCalendar.of(settings.periods, stored, datetime.now(UTC))
    return {
        "period": period,
        "state": calendar.state(period),
        "end": period_bounds(period)[1].isoformat(),
    }


def period_objects(settings: Settings, store: StoreLedger) -> list[dict[str, Any]]:
    """Every period with usage or a state set, oldest first."""
    stored = store.period_states()
    return [period_object(settings, stored, period) for period in store.known_periods()]


def total_objects(
    store: StoreLedger, account: str | None, unit: str | None, period: str | None
) -> list[dict[str, Any]]:
    """The rows of `meterpipe totals --json`."""
    return [row.to_json() for row in summarize_totals(store.total_rows(account, unit, period))]
