"""`meterpipe periods`: list billing periods, and close, hold or reopen one."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click

from consumers.store import open_ledger
from meterpipe.cli_options import checked_period, friendly_errors, print_table, store_options
from meterpipe.settings import Settings, load_settings
from meterpipe.views import period_objects
from schemas.period_calendar import PeriodCalendar

__all__ = ["period_state", "periods"]


def period_state(settings: Settings, period: str) -> str:
    """The effective state of one period now: open, grace, hold or closed."""
    store = open_ledger(settings.store)
    try:
        stored = store.period_states()
    finally:
        store.close()
    return PeriodCalendar.of(settings.periods, stored, datetime.now(UTC)).state(period)


@click.group()
def periods() -> None:
    """Billing periods (UTC calendar months): list, close, hold, reopen.

    Example: meterpipe periods list --json
    """


@periods.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@store_options
@friendly_errors
def list_periods(as_json: bool, data_dir: Path | None) -> None:
    """Every period with usage or a state set, and its state now.

    Example: meterpipe periods list
    """
    settings = load_settings(data_dir=data_dir)
    store = open_ledger(settings.store)
    try:
        rows = period_objects(settings, store)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        print_table(["period", "state", "end"], [list(row.values()) for row in rows])


def _set(period: str, state: str, data_dir: Path | None) -> None:
    checked = checked_period(period)
    store = open_ledger(load_settings(data_dir=data_dir).store)
    try:
        store.set_period_state(checked, state)
    finally:
        store.close()
    click.echo(f"{checked}: {state}")


@periods.command()
@click.argument("period")
@store_options
@friendly_errors
def close(period: str, data_dir: Path | None) -> None:
    """Close a period: its usage is final; events dated in it are refused from now on.

    Example: meterpipe periods close 2026-10
    """
    _set(period, "closed", data_dir)


@periods.command()
@click.argument("period")
@store_options
@friendly_errors
def hold(period: str, data_dir: Path | None) -> None:
    """Put a period on hold: never auto-closed, it keeps accepting usage.

    Example: meterpipe periods hold 2026-10
    """
    _set(period, "hold", data_dir)


@periods.command("open")
@click.argument("period")
@store_options
@friendly_errors
def reopen(period: str, data_dir: Path | None) -> None:
    """Reopen a period; it will not be auto-closed again.

    Example: meterpipe periods open 2026-10
    """
    _set(period, "open", data_dir)
