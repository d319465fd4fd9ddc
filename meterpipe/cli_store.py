"""`meterpipe store`: migrate the store's schema, show how big it is, prune old dedupe state.

Every process migrates the store when it opens it; `store migrate` lets a deployment do it
once, before the consumers start. `store stats` and `store prune` are how an operator
sizes the store and keeps dedupe state bounded by the retention window.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import click

from consumers.store import TotalsStore, open_store
from meterpipe.cli_options import friendly_errors, option, print_table, store_options
from meterpipe.settings import Settings, load_settings

__all__ = ["store"]


@contextlib.contextmanager
def _opened(settings: Settings) -> Iterator[TotalsStore]:
    """The configured store, migrated (opening does that), closed afterwards."""
    opened = open_store(settings.store)
    try:
        yield opened
    finally:
        opened.close()


@click.group()
def store() -> None:
    """The store: apply schema migrations, show its size, prune old dedupe state.

    Example: meterpipe store stats --store-url postgresql://meterpipe@db:5432/meterpipe
    """


@store.command()
@store_options
@friendly_errors
def migrate(data_dir: Path | None) -> None:
    """Bring the store's schema up to date and print its version (safe to run concurrently).

    Example: meterpipe store migrate
    """
    with _opened(load_settings(data_dir=data_dir)) as opened:
        click.echo(f"schema version {opened.schema_version()}")


@store.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@store_options
@friendly_errors
def stats(as_json: bool, data_dir: Path | None) -> None:
    """Rows and bytes of dedupe state, settled rows, totals and uploads; oldest dedupe entry.

    Example: meterpipe store stats --json
    """
    settings = load_settings(data_dir=data_dir)
    with _opened(settings) as opened:
        figures = opened.stats().to_json(time.time(), settings.store.dedupe_retention_days)
    if as_json:
        click.echo(json.dumps(figures, indent=2))
        return
    click.echo(f"{figures['backend']} store, schema version {figures['schemaVersion']}")
    tables = figures["tables"]
    print_table(["table", "rows", "bytes"], [[n, t["rows"], t["bytes"]] for n, t in tables.items()])
    dedupe = figures["dedupe"]
    click.echo(
        f"dedupe: {dedupe['entries']} entries, {dedupe['bytesPerEntry']} bytes each,"
        f" oldest {dedupe['oldestEntry']} (retention {dedupe['retentionDays']} days)"
    )
    click.echo(f"uploads: {figures['uploadsByStatus']}")


@store.command()
@option("--retention-days", "METERPIPE_DEDUPE_RETENTION_DAYS",
        "Forget eventIds first seen more than this many days ago.",
        type=click.IntRange(min=1), default=None)  # fmt: skip
@store_options
@friendly_errors
def prune(retention_days: int | None, data_dir: Path | None) -> None:
    """Forget dedupe entries older than the retention window (consumers also do it at start).

    An eventId sent again after its entry was pruned counts again: keep the window longer
    than any re-send you expect.

    Example: meterpipe store prune --retention-days 35
    """
    settings = load_settings(data_dir=data_dir, dedupe_retention_days=retention_days)
    with _opened(settings) as opened:
        pruned = opened.prune_seen()
    days = settings.store.dedupe_retention_days
    click.echo(f"pruned {pruned} dedupe entries first seen over {days} days ago")
