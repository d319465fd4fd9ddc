"""Read-only commands: what happened to uploads, and the totals they produced.

They find the store without the settings classes (`locate_store`) and open it without its
batch path (`open_ledger`), so they answer at once: neither pydantic, a dataframe library
nor a Kafka client is loaded. `uploads show`, which reads first arrivals back from the
events topic, lives in `meterpipe.cli_upload_show`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from consumers.store import UploadStatus, open_ledger
from meterpipe.cli_lazy import LazyGroup
from meterpipe.cli_options import checked_period, friendly_errors, print_table, store_options
from meterpipe.store_location import locate_store
from meterpipe.views import total_objects

__all__ = ["print_errors", "print_uploads", "totals", "uploads"]

UPLOAD_COLUMNS = [
    "reference", "name", "status", "records", "accepted", "rejected", "duplicates", "conflicts",
]  # fmt: skip
TOTAL_COLUMNS = ["accountId", "pricingUnit", "customUnit", "events", "quantity", "billableQuantity"]
SHOWN_ERRORS = 20
SHOW_HELP = "One upload with all its recorded errors and conflicts."


@click.group(
    cls=LazyGroup,
    lazy_commands={"show": ("meterpipe.cli_upload_show", "show", SHOW_HELP)},
    invoke_without_command=True,
)
@click.option("--status", type=click.Choice(["Processing", "Error", "Done"]), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@store_options
@click.pass_context
@friendly_errors
def uploads(
    ctx: click.Context, status: UploadStatus | None, as_json: bool, data_dir: Path | None
) -> None:
    """List uploads, newest first (or `uploads show REF` for one).

    Example: meterpipe uploads --status Error --json
    """
    if ctx.invoked_subcommand is not None:
        ctx.obj = data_dir
        return
    store = open_ledger(locate_store(data_dir))
    try:
        records = store.list_uploads(status)
    finally:
        store.close()
    print_uploads([record.to_json() for record in records], as_json)


def print_uploads(rows: list[dict[str, Any]], as_json: bool) -> None:
    """Uploads as the stable JSON array, or a table with the first errors of each."""
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    print_table(UPLOAD_COLUMNS, [[row[c] for c in UPLOAD_COLUMNS] for row in rows])
    for row in rows:
        print_errors(row, limit=SHOWN_ERRORS)


def print_errors(row: dict[str, Any], limit: int | None) -> None:
    """An upload's recorded row errors, the first `limit` of them (None: all)."""
    for error in row["errors"][:limit]:
        click.echo(
            f"  {row['reference']} row {error['row']} {error['column']}={error['value']!r}:"
            f" {error['reason']} ({error['message']})"
        )


@click.command()
@click.option("--account", help="Only this accountId.")
@click.option("--unit", help="Only this pricingUnit or customUnit.")
@click.option("--period", help="Only this UTC calendar month, YYYY-MM.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@store_options
@friendly_errors
def totals(
    account: str | None, unit: str | None, period: str | None, as_json: bool,
    data_dir: Path | None,
) -> None:  # fmt: skip
    """Usage totals per account and unit, exact decimals.

    Example: meterpipe totals --period 2026-10 --json
    """
    period = checked_period(period) if period is not None else None
    store = open_ledger(locate_store(data_dir))
    try:
        rows = total_objects(store, account, unit, period)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if period is not None:
        click.echo(f"period {period}: {_period_state(data_dir, period)}")
    print_table(TOTAL_COLUMNS, [[row[c] for c in TOTAL_COLUMNS] for row in rows])


def _period_state(data_dir: Path | None, period: str) -> str:
    """The state of `period` now, by the configured period rules."""
    # Imported here: the period rules are settings of their own (pydantic), which only
    # `totals --period` without --json pays for.
    from meterpipe.cli_periods import period_state
    from meterpipe.settings import load_settings

    return period_state(load_settings(data_dir=data_dir), period)
