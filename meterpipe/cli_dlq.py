"""`meterpipe dlq`: see what was dead-lettered and why, and replay it once the cause is fixed.

Typical use: events of a closed billing period were refused (`period_closed`); finance
puts the period on hold; `meterpipe dlq replay --reason period_closed` sends them round
again and they count, once, however often the replay is run.
"""

from __future__ import annotations

import json

import click

from consumers.dead_letter_topic import read_dead_letters, replay_dead_letters
from meterpipe.cli_options import friendly_errors, kafka_options, print_table
from meterpipe.pipeline import configured_bootstrap
from meterpipe.settings import load_settings

__all__ = ["dlq"]

reason_option = click.option(
    "--reason", default=None, help="Only dead letters refused for this reason."
)


@click.group()
def dlq() -> None:
    """The dead-letter topic: list refused events, replay them through validation.

    Example: meterpipe dlq list --reason period_closed
    """


@dlq.command("list")
@reason_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@kafka_options
@friendly_errors
def list_letters(reason: str | None, as_json: bool, bootstrap_servers: str | None) -> None:
    """Every dead letter with its reason, upload and row, oldest first.

    Example: meterpipe dlq list --json
    """
    settings = load_settings(bootstrap_servers=bootstrap_servers)
    bootstrap = configured_bootstrap(settings)
    entries = [entry.to_json() for entry in read_dead_letters(settings.kafka, bootstrap, reason)]
    if as_json:
        click.echo(json.dumps(entries, indent=2))
        return
    print_table(
        ["reason", "upload", "row", "eventId", "message"],
        [[e["reason"], e["upload"], e["row"], e["eventId"], e["message"]] for e in entries],
    )


@dlq.command()
@reason_option
@kafka_options
@friendly_errors
def replay(reason: str | None, bootstrap_servers: str | None) -> None:
    """Send dead-lettered events through validation again; dedupe keeps it safe to repeat.

    Example: meterpipe periods hold 2026-06 && meterpipe dlq replay --reason period_closed
    """
    settings = load_settings(bootstrap_servers=bootstrap_servers)
    bootstrap = configured_bootstrap(settings)
    entries = read_dead_letters(settings.kafka, bootstrap, reason)
    replayed, skipped = replay_dead_letters(settings.kafka, bootstrap, entries)
    click.echo(f"replayed {replayed} dead letters to {settings.kafka.topic}")
    if skipped:
        click.echo(f"skipped {skipped} too_large dead letters (only their head is kept)")
