"""Prometheus metrics of the pipeline, and the HTTP endpoint that serves them.

Every metric-owning object takes a `registry`, so tests use a fresh `CollectorRegistry`
and processes share the default one. Names are prefixed `meterpipe_`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from meterpipe.errors import StoreError
from meterpipe.http import Readiness

__all__ = ["PipelineMetrics", "RateWindow", "UploadStatusCollector"]

UPLOAD_STATUSES = ("Processing", "Error", "Done")
BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RateWindow:
    """Events per second over the last `window_s` seconds."""

    def __init__(self, window_s: float = 10.0) -> None:
        self._window_s = window_s
        self._samples: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()

    def add(self, count: int) -> None:
        """Record `count` events now."""
        now = time.monotonic()
        with self._lock:
            self._samples.append((now, count))
            while self._samples and self._samples[0][0] < now - self._window_s:
                self._samples.popleft()

    def rate(self) -> float:
        """Events per second in the window."""
        now = time.monotonic()
        with self._lock:
            total = sum(count for at, count in self._samples if at >= now - self._window_s)
        return total / self._window_s


class PipelineMetrics:
    """All counters, gauges and histograms meterpipe exports."""

    def __init__(self, registry: CollectorRegistry | None = REGISTRY) -> None:
        """`registry=None` keeps the metrics unregistered (one-shot commands)."""

        def counter(name: str, doc: str, labels: Iterable[str] = ()) -> Counter:
            return Counter(f"meterpipe_{name}", doc, labelnames=labels, registry=registry)

        self.rows_read = counter("rows_read", "Data rows read from uploaded files.")
        self.rows_invalid = counter(
            "rows_invalid",
            "Rows refused while publishing, each once, by the reason of its first error.",
            ["reason"],
        )
        self.events_published = counter("events_published", "Events acknowledged by the broker.")
        self.event_ids_assigned = counter(
            "event_ids_assigned", "Events whose empty eventId meterpipe assigned."
        )
        self.events_consumed = counter("events_consumed", "Messages consumed from the topic.")
        self.events_accepted = counter("events_accepted", "Events counted into the totals.")
        self.events_invalid = counter(
            "events_invalid", "Consumed events sent to the dead-letter topic.", ["reason"]
        )
        self.events_duplicate = counter(
            "events_duplicate", "Events dropped because their eventId was already counted."
        )
        self.events_conflicting = counter(
            "events_conflicting",
            "Duplicates whose content differs from their eventId's first arrival.",
        )
        self.events_redelivered = counter(
            "events_redelivered", "Events seen again (re-published or re-consumed), no effect."
        )
        self.batches_fenced = counter(
            "batches_fenced", "Batches discarded because their partitions had moved."
        )
        self.batch_seconds = Histogram(
            "meterpipe_batch_duration_seconds",
            "Time to decode, validate, dedupe, aggregate and commit one batch.",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "meterpipe_consumer_lag",
            "Messages behind the partition's high watermark (librdkafka statistics).",
            ["topic", "partition"],
            registry=registry,
        )
        self.rate = RateWindow()
        self.events_per_second = Gauge(
            "meterpipe_events_per_second",
            "Events processed per second over the last 10 s.",
            registry=registry,
        )
        self.events_per_second.set_function(self.rate.rate)
        # What /readyz reports: a consumer is ready once it has its partitions and its store.
        self.readiness = Readiness("kafka: partitions assigned", "store: reachable")


class UploadStatusCollector(Collector):
    """`meterpipe_uploads{status}`, read from the store at scrape time so it is never stale."""

    def __init__(self, status_counts: Callable[[], dict[str, int]]) -> None:
        self._status_counts = status_counts

    def collect(self) -> Iterable[Metric]:
        """One sample per status; none while the store is unreachable.

        A scrape must not fail with the store: the process's other metrics matter most
        during an outage, and no sample is better than a stale one.
        """
        family = GaugeMetricFamily("meterpipe_uploads", "Uploads by status.", labels=["status"])
        try:
            counts = self._status_counts()
        except StoreError:
            yield family
            return
        for status in UPLOAD_STATUSES:
            family.add_metric([status], counts.get(status, 0))
        yield family
