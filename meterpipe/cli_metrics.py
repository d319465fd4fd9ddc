"""Metrics, /healthz and /readyz: the endpoint every long-running command serves."""

from __future__ import annotations

import logging

import click
from prometheus_client import REGISTRY

from meterpipe.http import serve_http
from meterpipe.metrics import PipelineMetrics
from meterpipe.pipeline import upload_status_collector
from meterpipe.settings import Settings

__all__ = ["start_metrics"]

log = logging.getLogger("meterpipe")


def start_metrics(settings: Settings) -> PipelineMetrics:
    """Metrics, /healthz and /readyz on the configured port (0 picks a free one)."""
    metrics = PipelineMetrics()
    REGISTRY.register(upload_status_collector(settings))
    host, port = settings.metrics.metrics_host, settings.metrics.metrics_port
    bound = serve_http(host, port, metrics.readiness)
    log.info("metrics at http://127.0.0.1:%d/metrics", bound, extra={"metricsPort": bound})
    click.echo(f"metrics: http://127.0.0.1:{bound}/metrics", err=True)
    return metrics
