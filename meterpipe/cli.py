"""The `meterpipe` command: a thin shell over the library, turning errors into exit codes.

Each command lives in a `meterpipe.cli_*` module that is imported only when that command
runs, so `meterpipe --help` (and every command) starts without loading what it does not use.
Every option that has a setting shows its `METERPIPE_*` env var in `--help`. JSON output
(`--json`) is a stable interface documented in the README.
"""

from __future__ import annotations

import click

from meterpipe.cli_lazy import CommandTable, LazyGroup
from meterpipe.logs import configure_logging

__all__ = ["main"]

COMMANDS: CommandTable = {
    "up": (
        "meterpipe.cli_serve",
        "up",
        "Run everything: broker, inbox watcher, consumer, metrics.",
    ),
    "broker": ("meterpipe.cli_run", "broker", "Run the embedded Kafka broker on its own."),
    "publish": ("meterpipe.cli_run", "publish", "Publish one usage file (or - for stdin)."),
    "consume": ("meterpipe.cli_run", "consume", "Run one consumer-group member."),
    "uploads": ("meterpipe.cli_queries", "uploads", "List uploads, newest first, or show one."),
    "totals": ("meterpipe.cli_queries", "totals", "Print exact totals per account and unit."),
    "periods": ("meterpipe.cli_periods", "periods", "List, close, hold or reopen billing periods."),
    "template": ("meterpipe.cli_template", "template", "Write a format's CSV template."),
    "dlq": ("meterpipe.cli_dlq", "dlq", "List dead letters, or replay them."),
    "store": ("meterpipe.cli_store", "store", "Migrate, measure or prune the store."),
    "config": ("meterpipe.cli_config", "config", "Show the effective settings."),
    "serve": ("meterpipe.cli_serve", "serve", "Run the HTTP API and web console alone."),
    "keys": ("meterpipe.cli_keys", "keys", "Create, list or revoke API keys."),
    "bench": ("meterpipe.cli_bench", "bench", "Measure every phase against the transport ceiling."),
}


@click.group(cls=LazyGroup, lazy_commands=COMMANDS)
@click.option("--log-level", default="INFO", show_default=True, help="Logging level.")
@click.option(
    "--log-format", type=click.Choice(["auto", "text", "json"]), default="auto",
    envvar="METERPIPE_LOG_FORMAT", show_envvar=True, show_default=True,
    help="Readable lines on a terminal and JSON otherwise (auto), or as told.",
)  # fmt: skip
def main(log_level: str, log_format: str) -> None:
    """meterpipe: metered-usage CSV files to exact, exactly-once totals through Kafka."""
    configure_logging(log_level, None if log_format == "auto" else log_format == "json")
