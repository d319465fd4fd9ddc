"""Read-only commands: what happened to uploads, and the totals they produced."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from consumers.store import UploadStatus, open_store
from consumers.store.records import ConflictRecord
from meterpipe.cli_options import friendly_errors, kafka_options, print_table, store_options
from meterpipe.cli_periods import checked_period, period_state
from meterpipe.errors import MeterpipeError
from meterpipe.first_arrivals import describe_conflicts, read_first_arrivals
from meterpipe.pipeline import codec_for
from meterpipe.settings import Settings, load_settings
from meterpipe.views import total_objects

__all__ = ["print_uploads", "totals", "uploads"]

UPLOAD_COLUMNS = [
    "reference", "name", "status", "records", "accepted", "rejected", "duplicates", "conflicts",
]  # fmt: skip
TOTAL_COLUMNS = ["accountId", "pricingUnit", "customUnit", "events", "quantity", "billableQuantity"]
SHOWN_ERRORS = 20


@click.group(invoke_without_command=True)
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
    store = open_store(load_settings(data_dir=data_dir).store)
    try:
        records = store.list_uploads(status)
    finally:
        store.close()
    print_uploads([record.to_json() for record in records], as_json)


@uploads.command()
@click.argument("reference")
@click.option("--json", "as_json", is_flag=True, help="Print the upload as a JSON object.")
@store_options
@kafka_options
@click.pass_obj
@friendly_errors
def show(
    group_data_dir: Path | None, reference: str, as_json: bool, data_dir: Path | None,
    bootstrap_servers: str | None,
) -> None:  # fmt: skip
    """One upload with all its recorded errors and conflicts.

    A conflict is a duplicate whose content differs from its eventId's first arrival; each
    field that differs is shown with both values, the first read back from the events topic.

    Example: meterpipe uploads show u-3f2a9c0d1e2b4a5c --json
    """
    settings = load_settings(
        data_dir=data_dir or group_data_dir, bootstrap_servers=bootstrap_servers
    )
    store = open_store(settings.store)
    try:
        upload = store.find_upload(reference)
        conflicts = store.list_conflicts(reference) if upload is not None else []
    finally:
        store.close()
    if upload is None:
        raise MeterpipeError(f"no upload with reference {reference!r}")
    details = describe_conflicts(conflicts, _first_arrivals(settings, conflicts))
    if as_json:
        click.echo(json.dumps({**upload.to_json(), "conflictDetails": details}, indent=2))
        return
    for key, value in upload.to_json().items():
        if key != "errors":
            click.echo(f"{key:>16}: {value}")
    _print_errors(upload.to_json(), limit=None)
    for detail in details:
        click.echo(conflict_line(reference, detail))


def _first_arrivals(
    settings: Settings, conflicts: list[ConflictRecord]
) -> dict[int, dict[str, Any]] | None:
    """The first arrivals' events read back from the topic; None without a Kafka cluster."""
    positions = [c.first_position for c in conflicts if c.first_position is not None]
    if not positions or not settings.kafka.bootstrap_servers:
        return None if positions else {}
    return read_first_arrivals(
        settings.kafka, settings.kafka.bootstrap_servers, codec_for(settings), positions
    )


def conflict_line(reference: str, detail: dict[str, Any]) -> str:
    """One conflict as `uploads show` prints it."""
    first = f"{detail['firstUpload']} row {detail['firstRowNumber']}"
    head = f"  {reference} row {detail['rowNumber']} ({detail['eventId']}) conflicts with {first}"
    now = _fields(detail["values"])
    if not detail["firstFilled"]:
        return f"{head}, which left this value empty; now {now}"
    if detail["firstRetained"] is None:
        return f"{head} (not read: no Kafka cluster configured); this row: {now}"
    if not detail["firstRetained"]:
        return f"{head} (no longer retained in the topic); this row: {now}"
    changes = "; ".join(
        f"{d['field']}: {d['first']!r} -> {d['this']!r}" for d in detail["differences"]
    )
    return f"{head}: {changes}"


def _fields(values: dict[str, Any]) -> str:
    return ", ".join(f"{name}={value!r}" for name, value in values.items() if value is not None)


def print_uploads(rows: list[dict[str, Any]], as_json: bool) -> None:
    """Uploads as the stable JSON array, or a table with the first errors of each."""
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    print_table(UPLOAD_COLUMNS, [[row[c] for c in UPLOAD_COLUMNS] for row in rows])
    for row in rows:
        _print_errors(row, limit=SHOWN_ERRORS)


def _print_errors(row: dict[str, Any], limit: int | None) -> None:
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
    settings = load_settings(data_dir=data_dir)
    store = open_store(settings.store)
    try:
        rows = total_objects(store, account, unit, period)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if period is not None:
        click.echo(f"period {period}: {period_state(settings, period)}")
    print_table(TOTAL_COLUMNS, [[row[c] for c in TOTAL_COLUMNS] for row in rows])
