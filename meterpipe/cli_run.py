"""The commands that run one part of the pipeline: the broker, publishing, consuming.

They load no HTTP framework: `up` and `serve`, which serve the API, are in `cli_serve`.
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import click

from consumers.store import open_store
from meterpipe.broker import EmbeddedBroker
from meterpipe.cli_metrics import start_metrics
from meterpipe.cli_options import (
    format_option,
    friendly_errors,
    kafka_options,
    meters_option,
    metrics_options,
    option,
    store_options,
)
from meterpipe.cli_queries import print_uploads
from meterpipe.metrics import PipelineMetrics
from meterpipe.pipeline import (
    configured_bootstrap,
    consume_until,
    prepare_cluster,
    upload_publisher,
)
from meterpipe.settings import Settings, load_settings
from meterpipe.shutdown import stop_on_signals
from meterpipe.topics import ensure_topics
from producers.upload import UploadRequest

__all__ = ["broker", "consume", "publish"]

log = logging.getLogger("meterpipe")


@click.command()
@option("--port", "METERPIPE_BROKER_PORT", "Port to listen on (0 picks a free one).",
         type=int, default=0)  # fmt: skip
@friendly_errors
def broker(port: int) -> None:
    """Run the embedded Kafka broker on its own and print its bootstrap address.

    Example: meterpipe broker --port 19092
    """
    settings = load_settings()
    timeout = settings.runtime.shutdown_timeout_s
    with stop_on_signals(timeout) as shutdown, EmbeddedBroker(port=port) as embedded:
        ensure_topics(settings.kafka, embedded.bootstrap_servers)
        click.echo(embedded.bootstrap_servers)
        sys.stdout.flush()
        while not shutdown.stop.wait(0.5):
            if not embedded.is_running():
                raise click.ClickException("embedded broker exited")


@click.command()
@click.argument("file", type=click.Path(allow_dash=True, path_type=Path))
@click.option("--reference", help="Upload reference (required for stdin; default generated).")
@click.option("--description", help="Free-text description of the upload.")
@click.option("--skip-invalid", is_flag=True, default=None,
              help="Ingest the valid rows and report the others (default: strict).")  # fmt: skip
@click.option(
    "--force",
    is_flag=True,
    help="Publish even if the same bytes were ingested before (dedupe still applies).",
)
@format_option("File format (default: detected from the header).")
@meters_option
@click.option("--json", "as_json", is_flag=True, help="Print the upload as JSON.")
@kafka_options
@store_options
@friendly_errors
def publish(
    *,
    file: Path, reference: str | None, description: str | None, skip_invalid: bool | None,
    force: bool, file_format: str | None, meters: Path | None, as_json: bool,
    bootstrap_servers: str | None, data_dir: Path | None,
) -> None:  # fmt: skip
    """Publish one usage file (or - for stdin) as events; exit 1 if it was rejected.

    Example: meterpipe publish usage.csv --reference 2026-10-acme
    """
    settings = load_settings(
        bootstrap_servers=bootstrap_servers, data_dir=data_dir, skip_invalid=skip_invalid,
        file_format=file_format, meters=meters,
    )  # fmt: skip
    bootstrap = configured_bootstrap(settings)
    prepare_cluster(settings, bootstrap)
    metrics = PipelineMetrics(registry=None)
    with (
        _source(
            UploadRequest(file, file.name, reference, description, force=force), settings
        ) as request,
        upload_publisher(settings, bootstrap, metrics) as uploads,
        _progress_bar(request.path) as progress,
    ):
        ref = uploads.publish(request, progress)
    store = open_store(settings.store)
    upload = store.find_upload(ref)
    store.close()
    assert upload is not None
    print_uploads([upload.to_json()], as_json)
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
def _source(request: UploadRequest, settings: Settings) -> Iterator[UploadRequest]:
    """The request as is for a file; for stdin, spooled to disk first (two passes need a file)."""
    if str(request.path) != "-":
        yield request
        return
    if not request.reference:
        raise click.UsageError("--reference is required when publishing stdin")
    spool_dir = settings.store.data_dir / "spool"
    spool_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=spool_dir, suffix=".csv") as spool:
        shutil.copyfileobj(sys.stdin.buffer, spool)
        spool.flush()
        yield replace(request, path=Path(spool.name), name="stdin", upload_key=request.reference)


@click.command()
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
    prepare_cluster(settings, bootstrap)
    metrics = start_metrics(settings)
    with stop_on_signals(settings.runtime.shutdown_timeout_s) as shutdown:
        consume_until(settings, bootstrap, metrics, shutdown.stop)
