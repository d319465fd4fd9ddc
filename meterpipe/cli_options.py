"""Options and helpers shared by every `meterpipe` command.

Env vars act as option defaults and are shown in `--help`; meterpipe errors become a short
red message and exit code 2, never a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, get_args

import click

from meterpipe.errors import MeterpipeError
from meterpipe.format_names import FormatName
from schemas.period_calendar import normalised_period

__all__ = [
    "checked_period",
    "format_option",
    "friendly_errors",
    "kafka_options",
    "meters_option",
    "metrics_options",
    "option",
    "print_table",
    "store_options",
]

F = TypeVar("F", bound=Callable[..., Any])
STORE_URL_ENV = "METERPIPE_STORE_URL"
PIPED_TABLE_WIDTH = 10_000  # wider than any table: piped, a table keeps its natural width


def option(name: str, env: str, help_text: str, **kwargs: Any) -> Callable[[F], F]:
    """A click option whose default comes from env var `env`, shown in --help."""
    return click.option(name, envvar=env, show_envvar=True, help=help_text, **kwargs)


def format_option(help_text: str, *, required: bool = False) -> Callable[[F], F]:
    """--format appdirect|solvimon (METERPIPE_FILE_FORMAT)."""
    return click.option(
        "--format", "file_format", envvar="METERPIPE_FILE_FORMAT", show_envvar=True,
        type=click.Choice(get_args(FormatName)), default=None, required=required,
        help=help_text,
    )  # fmt: skip


def meters_option(command: F) -> F:
    """--meters FILE (METERPIPE_METERS): the Solvimon meter columns."""
    return option(
        "--meters", "METERPIPE_METERS",
        "TOML file naming the Solvimon meter columns (values, properties).",
        type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
    )(command)  # fmt: skip


def store_options(command: F) -> F:
    """--data-dir and --store-url, shared by every command that reads or writes the store."""
    command = option(
        "--store-url", STORE_URL_ENV,
        "Store URL (postgresql://user@host:5432/db); unset uses the SQLite file in --data-dir.",
        default=None, expose_value=False, callback=_apply_store_url,
    )(command)  # fmt: skip
    return option(
        "--data-dir", "METERPIPE_DATA_DIR", "Directory of the embedded store.",
        type=click.Path(path_type=Path), default=None,
    )(command)  # fmt: skip


def _apply_store_url(ctx: click.Context, _: click.Parameter, value: str | None) -> None:
    """Give --store-url to every settings load of the command as the env var it mirrors.

    The URL is read where settings are loaded, possibly several times per command (a
    metrics collector opens its own connection), so it is set for the command's whole
    context, subcommands included, and restored when the context closes.
    """
    if value is not None:
        ctx.with_resource(_environ(STORE_URL_ENV, value))


@contextlib.contextmanager
def _environ(name: str, value: str) -> Iterator[None]:
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def kafka_options(command: F) -> F:
    """--bootstrap-servers, shared by every command that talks to Kafka."""
    return option(
        "--bootstrap-servers", "METERPIPE_BOOTSTRAP_SERVERS",
        "Kafka bootstrap servers (host:port,...).", default=None,
    )(command)  # fmt: skip


def metrics_options(command: F) -> F:
    """--metrics-port, for long-running processes."""
    return option(
        "--metrics-port", "METERPIPE_METRICS_PORT",
        "Port of the Prometheus /metrics endpoint (0 picks a free one).", type=int, default=None,
    )(command)  # fmt: skip


def checked_period(text: str) -> str:
    """`YYYY-MM` normalised, or a usage error naming the bad value."""
    period = normalised_period(text)
    if period is None:
        raise click.BadParameter(f"{text!r} is not a YYYY-MM period (years 0001 to 9998)")
    return period


def friendly_errors(command: F) -> F:
    """Turn meterpipe errors into a short red message and exit code 2, no traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except MeterpipeError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


def print_table(columns: list[str], rows: list[list[Any]]) -> None:
    """A table (rich), for the human-readable form of list commands.

    On a terminal it fits the window. Piped or redirected, rich would fit it into 80
    columns by cutting cells short ("u-ef48ba…"); a log, or a script reading references
    from it, needs every cell whole, so the table keeps its natural width.
    """
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns)
    for row in rows:
        table.add_row(*["" if value is None else str(value) for value in row])
    console = Console()
    if not console.is_terminal:
        console.width = PIPED_TABLE_WIDTH
    console.print(table)
