"""The `meterpipe` command: a thin shell over the library, turning errors into exit codes.

Every option that has a setting shows its `METERPIPE_*` env var in `--help`. JSON output
(`--json`) is a stable interface documented in the README.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from prometheus_client import REGISTRY

from consumers.store import open_store
from consumers.store.reports import summarize_totals
from meterpipe.broker import EmbeddedBroker
from meterpipe.errors import MeterpipeError
from meterpipe.metrics import PipelineMetrics, serve_metrics
from meterpipe.pipeline import (
    Pipeline,
    configured_bootstrap,
    consume_until,
    upload_publisher,
    upload_status_collector,
)
from meterpipe.settings import Settings, load_settings
from meterpipe.topics import ensure_topics
from producers.upload import UploadRequest

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("meterpipe")


def _option(name: str, env: str, help_text: str, **kwargs: Any) -> Callable[[F], F]:
    return click.option(name, envvar=env, show_envvar=True, help=help_text, **kwargs)


def store_options(command: F) -> F:
    """--data-dir, shared by every command that reads or writes the store."""
    return _option(
        "--data-dir", "METERPIPE_DATA_DIR", "Directory of the embedded store.",
        type=click.Path(path_type=Path), default=None,
    )(command)  # fmt: skip


def kafka_options(command: F) -> F:
    """--bootstrap-servers, shared by every command that talks to Kafka."""
    return _option(
        "--bootstrap-servers", "METERPIPE_BOOTSTRAP_SERVERS",
        "Kafka bootstrap servers (host:port,...).", default=None,
    )(command)  # fmt: skip


def metrics_options(command: F) -> F:
    """--metrics-port, for long-running processes."""
    return _option(
        "--metrics-port", "METERPIPE_METRICS_PORT",
        "Port of the Prometheus /metrics endpoint (0 picks a free one).", type=int, default=None,
    )(command)  # fmt: skip


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


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM, so loops finish their batch and exit cleanly."""
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _start_metrics(settings: Settings) -> PipelineMetrics:
    metrics = PipelineMetrics()
    REGISTRY.register(upload_status_collector(settings))
    port = serve_metrics(settings.metrics.metrics_host, settings.metrics.metrics_port)
    log.info("metrics at http://127.0.0.1:%d/metrics", port)
    click.echo(f"metrics: http://127.0.0.1:{port}/metrics", err=True)
    return metrics


@click.group()
@click.option("--log-level", default="INFO", show_default=True, help="Logging level.")
def main(log_level: str) -> None:
    """meterpipe: metered-usage CSV files to exact, exactly-once totals through Kafka."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@main.command()
@_option("--port", "METERPIPE_BROKER_PORT", "Port to listen on (0 picks a free one).",
         type=int, default=0)  # fmt: skip
@friendly_errors
def broker(port: int) -> None:
    """Run the embedded Kafka broker on its own and print its bootstrap address.

    Example: meterpipe broker --port 19092
    """
    settings = load_settings()
    with _stop_on_signals() as stop, EmbeddedBroker(port=port) as embedded:
        ensure_topics(settings.kafka, embedded.bootstrap_servers)
        click.echo(embedded.bootstrap_servers)
        sys.stdout.flush()
        while not stop.wait(0.5):
            if not embedded.is_running():
                raise click.ClickException("embedded broker exited")


@main.command()
@click.argument("file", type=click.Path(allow_dash=True, path_type=Path))
@click.option("--reference", help="Upload reference (required for stdin; default generated).")
@click.option("--description", help="Free-text description of the upload.")
@click.option("--skip-invalid", is_flag=True, default=None,
              help="Ingest the valid rows and report the others (default: strict).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the upload as JSON.")
@kafka_options
@store_options
@friendly_errors
def publish(
    *,
    file: Path, reference: str | None, description: str | None, skip_invalid: bool | None,
    as_json: bool, bootstrap_servers: str | None, data_dir: Path | None,
) -> None:  # fmt: skip
    """Publish one AppDirect CSV file (or - for stdin) as events; exit 1 if it was rejected.

    Example: meterpipe publish usage.csv --reference 2026-10-acme
    """
    settings = load_settings(
        bootstrap_servers=bootstrap_servers, data_dir=data_dir, skip_invalid=skip_invalid
    )
    bootstrap = configured_bootstrap(settings)
    ensure_topics(settings.kafka, bootstrap)
    metrics = PipelineMetrics(registry=None)
    with (
        _source(file, reference, description, settings) as request,
        upload_publisher(settings, bootstrap, metrics) as uploads,
        _progress_bar(request.path) as progress,
    ):
        ref = uploads.publish(request, progress)
    store = open_store(settings.store)
    upload = store.find_upload(ref)
    store.close()
    assert upload is not None
    _print_uploads([upload.to_json()], as_json)
    if upload.status == "Error":
        sys.exit(1)


@contextmanager
def _progress_bar(path: Path) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on a terminal (checking, then publishing); nothing when piped."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"publishing {path.name}", total=2 * path.stat().st_size)
        yield lambda done: bar.update(task, completed=done)


@contextmanager
def _source(
    file: Path, reference: str | None, description: str | None, settings: Settings
) -> Iterator[UploadRequest]:
    """The request for a file, or for stdin spooled to disk (two passes need a file)."""
    if str(file) != "-":
        yield UploadRequest(path=file, name=file.name, reference=reference, description=description)
        return
    if not reference:
        raise click.UsageError("--reference is required when publishing stdin")
    spool_dir = settings.store.data_dir / "spool"
    spool_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=spool_dir, suffix=".csv") as spool:
        shutil.copyfileobj(sys.stdin.buffer, spool)
        spool.flush()
        yield UploadRequest(
            path=Path(spool.name), name="stdin", reference=reference, description=description,
            upload_key=reference,
        )  # fmt: skip


@main.command()
@kafka_options
@store_options
@metrics_options
@friendly_errors
def consume(bootstrap_servers: str | None, data_dir: Path | None, metrics_port: int | None) -> None:
    """Run one consumer-group member until SIGTERM/SIGINT.

    Example: meterpipe consume --bootstrap-servers 127.0.0.1:19092
    """
    settings = load_settings(
        bootstrap_servers=bootstrap_servers, data_dir=data_dir, metrics_port=metrics_port
    )
    bootstrap = configured_bootstrap(settings)
    ensure_topics(settings.kafka, bootstrap)
    metrics = _start_metrics(settings)
    with _stop_on_signals() as stop:
        consume_until(settings, bootstrap, metrics, stop)


@main.command()
@_option("--inbox", "METERPIPE_INBOX", "Directory to watch for files.",
         type=click.Path(path_type=Path), default=None)  # fmt: skip
@kafka_options
@store_options
@metrics_options
@friendly_errors
def up(
    inbox: Path | None, bootstrap_servers: str | None, data_dir: Path | None,
    metrics_port: int | None,
) -> None:  # fmt: skip
    """Run everything: broker (unless configured), inbox watcher, consumer, metrics.

    Example: meterpipe up --inbox ./inbox --data-dir ./data --metrics-port 9108
    """
    settings = load_settings(
        inbox=inbox, bootstrap_servers=bootstrap_servers, data_dir=data_dir,
        metrics_port=metrics_port,
    )  # fmt: skip
    settings.watch.inbox.mkdir(parents=True, exist_ok=True)
    metrics = _start_metrics(settings)
    click.echo(f"watching {settings.watch.inbox.resolve()}", err=True)
    with _stop_on_signals() as stop:
        Pipeline(settings, metrics).run(stop)


@main.command()
@click.option("--status", type=click.Choice(["Processing", "Error", "Done"]), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@store_options
@friendly_errors
def uploads(status: str | None, as_json: bool, data_dir: Path | None) -> None:
    """List uploads, newest first.

    Example: meterpipe uploads --status Error --json
    """
    store = open_store(load_settings(data_dir=data_dir).store)
    try:
        records = store.list_uploads(status)  # type: ignore[arg-type]
    finally:
        store.close()
    _print_uploads([record.to_json() for record in records], as_json)


def _print_uploads(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    columns = ["reference", "name", "status", "records", "accepted", "rejected", "duplicates"]
    _print_table(columns, [[row[c] for c in columns] for row in rows])
    for row in rows:
        for error in row["errors"][:20]:
            click.echo(
                f"  {row['reference']} row {error['row']} {error['column']}={error['value']!r}:"
                f" {error['reason']} ({error['message']})"
            )


@main.command()
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
    if period is not None and not _is_period(period):
        raise click.BadParameter("expected YYYY-MM", param_hint="--period")
    store = open_store(load_settings(data_dir=data_dir).store)
    try:
        rows = summarize_totals(store.total_rows(account, unit, period))
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps([row.to_json() for row in rows], indent=2))
        return
    columns = ["accountId", "pricingUnit", "customUnit", "events", "quantity", "billableQuantity"]
    _print_table(columns, [[row.to_json()[c] for c in columns] for row in rows])


def _is_period(text: str) -> bool:
    year, _, month = text.partition("-")
    return len(year) == 4 and year.isdigit() and month.isdigit() and 1 <= int(month) <= 12


def _print_table(columns: list[str], rows: list[list[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns)
    for row in rows:
        table.add_row(*["" if value is None else str(value) for value in row])
    Console().print(table)


@main.command()
@click.option("--rows", type=int, default=1_000_000, show_default=True, help="Rows to generate.")
@click.option("--work-dir", type=click.Path(path_type=Path), default=None,
              help="Where files and stores go (default: a temporary dir).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@kafka_options
@friendly_errors
def bench(rows: int, work_dir: Path | None, as_json: bool, bootstrap_servers: str | None) -> None:
    """Measure every phase against the transport ceiling and check the totals.

    Example: meterpipe bench --rows 1000000 --json
    """
    from meterpipe.bench import run_bench

    settings = load_settings(bootstrap_servers=bootstrap_servers)
    with _work_dir(work_dir) as work:
        report = run_bench(settings, rows, work, lambda step: click.echo(f"... {step}", err=True))
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        columns = ["phase", "events", "seconds", "events/s", "peak RSS MB", "of ceiling"]
        _print_table(columns, [
            [p.name, p.events, p.seconds, p.events_per_s, p.peak_rss_mb,
             f"{p.of_ceiling:.0%}" if p.of_ceiling is not None else ""]
            for p in report.phases
        ])  # fmt: skip
        verdict = "match" if report.totals_match else "DO NOT MATCH"
        click.echo(
            f"{report.rows:,} rows ({report.file_mb:.0f} MB): totals {verdict} the ground truth"
        )
    if not report.totals_match:
        sys.exit(1)


@contextmanager
def _work_dir(work_dir: Path | None) -> Iterator[Path]:
    if work_dir is not None:
        yield work_dir
        return
    with tempfile.TemporaryDirectory(prefix="meterpipe-bench-") as temporary:
        yield Path(temporary)
