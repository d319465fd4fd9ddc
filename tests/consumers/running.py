"""A UsageConsumer running in a thread of the test, as `meterpipe consume` runs it."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry

from consumers.consumer import UsageConsumer
from consumers.store.sqlite import SqliteStore
from meterpipe.metrics import PipelineMetrics
from meterpipe.settings import Settings
from schemas.codec import make_codec

START_TIMEOUT_S = 60.0


@contextlib.contextmanager
def running_consumer(
    settings: Settings,
    bootstrap: str,
    store_path: Path,
    registry: CollectorRegistry,
    prepare: Callable[[UsageConsumer], None] = lambda _: None,
) -> Iterator[UsageConsumer]:
    """Yield the consumer once it runs; on leaving, stop it and check that it ended.

    The SQLite store is opened in the consumer's own thread (connections belong to one
    thread), as `consume` does; `prepare` may change the consumer before it runs.
    """
    stop = threading.Event()
    started: queue.Queue[UsageConsumer] = queue.Queue()

    def run() -> None:
        store = SqliteStore.open(store_path)
        try:
            metrics = PipelineMetrics(registry)
            consumer = UsageConsumer(settings, bootstrap, store, make_codec(None, "v"), metrics)
            prepare(consumer)
            started.put(consumer)
            consumer.run(stop)
        finally:
            store.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield started.get(timeout=START_TIMEOUT_S)
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive()
