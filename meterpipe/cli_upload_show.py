"""`meterpipe uploads show`: one upload with its errors and conflicts.

A conflict's first arrival is read back from the events topic, so this command (alone
among the upload commands) loads the Kafka client and the codec.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from consumers.store import open_ledger
from consumers.store.records import ConflictRecord
from meterpipe.cli_options import friendly_errors, kafka_options, store_options
from meterpipe.cli_queries import print_errors
from meterpipe.errors import MeterpipeError
from meterpipe.first_arrivals import describe_conflicts, read_first_arrivals
from meterpipe.pipeline import codec_for
from meterpipe.settings import Settings, load_settings

__all__ = ["conflict_line", "show"]


@click.command()
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
    store = open_ledger(settings.store)
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
    print_errors(upload.to_json(), limit=None)
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
