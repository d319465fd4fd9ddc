"""The commands that serve the HTTP API and console: `serve` alone, and `up` with
everything else."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from meterpipe.cli_metrics import start_metrics
from meterpipe.cli_options import (
    friendly_errors,
    kafka_options,
    metrics_options,
    option,
    store_options,
)
from meterpipe.pipeline import Pipeline, configured_bootstrap, prepare_cluster, publish_until
from meterpipe.settings import Settings, load_settings
from meterpipe.shutdown import stop_on_signals
from meterpipe.web import WebServer, check_open_access, create_app
from producers.handover import HandOver

__all__ = ["serve", "up"]

log = logging.getLogger("meterpipe")
F = TypeVar("F", bound=Callable[..., Any])


def http_options(command: F) -> F:
    """--http-port (METERPIPE_HTTP_PORT), for the commands serving the HTTP API."""
    return option(
        "--http-port", "METERPIPE_HTTP_PORT",
        "Port of the HTTP API and console (0 picks a free one).", type=int, default=None,
    )(command)  # fmt: skip


def start_web(settings: Settings, hand_over: HandOver) -> WebServer:
    """Serve the API and console; log the address (`httpPort`) once it accepts requests.

    ConfigError if no API key exists and the address is not loopback.
    """
    check_open_access(settings)
    host = settings.http.http_host
    server = WebServer(create_app(settings, hand_over), host, settings.http.http_port)
    port = server.start()
    shown = f"[{host}]" if ":" in host else host
    log.info("HTTP API and console at http://%s:%d/", shown, port, extra={"httpPort": port})
    click.echo(f"console: http://{shown}:{port}/", err=True)
    return server


@click.command()
@http_options
@kafka_options
@store_options
@metrics_options
@friendly_errors
def serve(
    http_port: int | None, bootstrap_servers: str | None, data_dir: Path | None,
    metrics_port: int | None,
) -> None:  # fmt: skip
    """Run the HTTP API and console alone: files sent to it are published, nothing consumed.

    Needs a cluster (METERPIPE_BOOTSTRAP_SERVERS) and the store the consumers write.

    Example: meterpipe serve --http-port 8080 --bootstrap-servers kafka:9092
    """
    settings = load_settings(
        http_port=http_port, bootstrap_servers=bootstrap_servers, data_dir=data_dir,
        metrics_port=metrics_port,
    )  # fmt: skip
    bootstrap = configured_bootstrap(settings)
    prepare_cluster(settings, bootstrap)
    metrics = start_metrics(settings)
    hand_over = HandOver()
    server = start_web(settings, hand_over)
    # Ready once serving: it checked the cluster above and has no partitions to wait for.
    metrics.readiness.set("kafka: partitions assigned", True)
    with stop_on_signals(settings.runtime.shutdown_timeout_s) as shutdown:
        publisher = threading.Thread(
            target=publish_until, args=(settings, bootstrap, metrics, shutdown.stop, hand_over),
            kwargs={"scan_inbox": False}, name="publisher", daemon=True,
        )  # fmt: skip
        publisher.start()
        metrics.readiness.set("store: reachable", True)  # check_open_access read it
        try:
            shutdown.stop.wait()
        finally:
            server.stop(settings.runtime.shutdown_timeout_s / 2)
            shutdown.join(publisher)


@click.command()
@option("--inbox", "METERPIPE_INBOX", "Directory to watch for files.",
         type=click.Path(path_type=Path), default=None)  # fmt: skip
@http_options
@kafka_options
@store_options
@metrics_options
@friendly_errors
def up(
    inbox: Path | None, http_port: int | None, bootstrap_servers: str | None,
    data_dir: Path | None, metrics_port: int | None,
) -> None:  # fmt: skip
    """Run everything: broker (unless configured), inbox watcher, consumer, metrics, and
    the HTTP API and console.

    Example: meterpipe up --inbox ./inbox --data-dir ./data --metrics-port 9108
    """
    settings = load_settings(
        inbox=inbox, http_port=http_port, bootstrap_servers=bootstrap_servers,
        data_dir=data_dir, metrics_port=metrics_port,
    )  # fmt: skip
    settings.watch.inbox.mkdir(parents=True, exist_ok=True)
    metrics = start_metrics(settings)
    hand_over = HandOver()
    web = start_web(settings, hand_over)
    click.echo(f"watching {settings.watch.inbox.resolve()}", err=True)
    with stop_on_signals(settings.runtime.shutdown_timeout_s) as shutdown:
        try:
            Pipeline(settings, metrics, hand_over).run(shutdown)
        finally:
            web.stop(shutdown.remaining())
