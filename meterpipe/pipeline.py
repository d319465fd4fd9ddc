"""Wiring the parts into running processes: `publish`, `consume` and `up`.

Each thread opens its own store connection (SQLite connections are per thread). `up`
supervises the embedded broker: if it dies, it is restarted on the same port, the
consumer rejoins (and notices the new log), a publish in flight is abandoned (its
producer's messages died with the broker), and every upload not yet Done is published
again from its claimed file, which deterministic eventIds make safe; a consumer that
Kafka's ACLs refuse ends `up` with that error, as it ends `consume`. On shutdown the
watcher and consumer threads get `shutdown_timeout_s` to finish (see meterpipe/shutdown.py).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

from consumers.consumer import UsageConsumer
from consumers.store import open_store
from meterpipe.broker import EmbeddedBroker
from meterpipe.errors import AuthorizationError, ConfigError
from meterpipe.kafka_check import check_connection
from meterpipe.kafka_config import producer_config
from meterpipe.metrics import PipelineMetrics, UploadStatusCollector
from meterpipe.publisher import EventPublisher
from meterpipe.settings import Settings
from meterpipe.shutdown import Shutdown
from meterpipe.topics import ensure_topics
from producers.handover import HandOver
from producers.upload import UploadPublisher
from producers.watcher import InboxWatcher
from schemas.codec import EventCodec, make_codec

__all__ = [
    "Pipeline",
    "configured_bootstrap",
    "prepare_cluster",
    "publish_until",
    "upload_publisher",
    "upload_status_collector",
]

log = logging.getLogger(__name__)
SUPERVISE_EVERY_S = 1.0
LEAVE_GRACE_S = 10.0  # see _wait_until_leaving


def codec_for(settings: Settings) -> EventCodec:
    """The wire format the settings ask for."""
    return make_codec(settings.kafka.registry_url, f"{settings.kafka.topic}-value")


def configured_bootstrap(settings: Settings) -> str:
    """The configured cluster, for commands that cannot run their own broker."""
    if not settings.kafka.bootstrap_servers:
        raise ConfigError(
            "no Kafka cluster configured: set METERPIPE_BOOTSTRAP_SERVERS (or --bootstrap-servers),"
            " e.g. to the address `meterpipe broker` prints, or use `meterpipe up`"
        )
    return settings.kafka.bootstrap_servers


def prepare_cluster(settings: Settings, bootstrap: str) -> None:
    """Check that the cluster accepts our connection settings, then create the topics."""
    check_connection(settings.kafka, bootstrap)
    ensure_topics(settings.kafka, bootstrap)


@contextlib.contextmanager
def upload_publisher(
    settings: Settings,
    bootstrap: str,
    metrics: PipelineMetrics,
    stop: threading.Event | None = None,
    replaced: threading.Event | None = None,
) -> Iterator[UploadPublisher]:
    """An UploadPublisher with its own store connection and producer.

    `stop` (shutdown) and `replaced` (the broker lost its memory) interrupt it.
    """
    store = open_store(settings.store)
    config = producer_config(settings.kafka, bootstrap)
    publisher = EventPublisher(config, settings.kafka.topic, stop, replaced)
    try:
        spool_dir = settings.store.data_dir / "spool"
        codec = codec_for(settings)
        yield UploadPublisher(
            settings.upload, store, publisher, codec, metrics, spool_dir=spool_dir,
            periods=settings.periods,
        )  # fmt: skip
    finally:
        publisher.close()
        store.close()


def upload_status_collector(settings: Settings) -> UploadStatusCollector:
    """`meterpipe_uploads{status}`, each scrape reading the store on its own connection."""

    def counts() -> dict[str, int]:
        store = open_store(settings.store)
        try:
            return store.status_counts()
        finally:
            store.close()

    return UploadStatusCollector(counts)


def consume_until(
    settings: Settings,
    bootstrap: str,
    metrics: PipelineMetrics,
    stop: threading.Event,
    closing: threading.Event | None = None,
) -> None:
    """Run one consumer-group member until `stop` is set; `closing` is set once it leaves."""
    store = open_store(settings.store)
    metrics.readiness.set("store: reachable", True)
    try:
        store.prune_seen()
        UsageConsumer(settings, bootstrap, store, codec_for(settings), metrics).run(stop, closing)
    finally:
        store.close()


def publish_until(
    settings: Settings,
    bootstrap: str,
    metrics: PipelineMetrics,
    stop: threading.Event,
    hand_over: HandOver | None = None,
    *,
    scan_inbox: bool = True,
    resume: threading.Event | None = None,
) -> None:
    """Publish the inbox's files (unless `scan_inbox` is False) and those handed over.

    `resume` asks to re-publish every unfinished upload (the broker was replaced).
    """
    with upload_publisher(settings, bootstrap, metrics, stop, replaced=resume) as uploads:
        store = open_store(settings.store)
        try:
            watcher = InboxWatcher(settings.watch, uploads, store, hand_over, scan_inbox=scan_inbox)
            watcher.run(stop, resume)
        finally:
            store.close()


class _ConsumerThread(threading.Thread):
    """The consumer's thread, the event its member sets once it has begun to leave, and the
    refusal that ended it, if Kafka's ACLs refused it (no new member would fare better)."""

    def __init__(self, closing: threading.Event, **thread: Any) -> None:
        super().__init__(**thread)
        self.closing = closing
        self.refused: AuthorizationError | None = None

    def run(self) -> None:
        try:
            super().run()
        except AuthorizationError as exc:
            self.refused = exc


def _wait_until_leaving(consumer: _ConsumerThread) -> None:
    """Wait until the old consumer is gone, or has been closing for `LEAVE_GRACE_S`.

    It must not join the new broker's group: on Tansu, a member that joins and leaves
    mid-join stays the group's leader, and the next member never gets a partition. A member
    that has begun to close never joins again, and its close can wait minutes on the dead
    broker (librdkafka), holding up the restart: after a grace period it is left to finish.
    """
    while consumer.is_alive() and not consumer.closing.wait(SUPERVISE_EVERY_S / 10):
        pass
    consumer.join(LEAVE_GRACE_S)
    if consumer.is_alive():
        log.warning("the old consumer is still leaving the lost broker's group; going on")


class Pipeline:
    """`meterpipe up`: broker (unless configured), inbox watcher and consumer together.

    Files the HTTP API received reach the watcher through `hand_over`.
    """

    def __init__(
        self, settings: Settings, metrics: PipelineMetrics, hand_over: HandOver | None = None
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._hand_over = hand_over
        self._broker: EmbeddedBroker | None = None
        self._resume = threading.Event()

    def run(self, shutdown: Shutdown) -> None:
        """Run until shutdown is requested; restart the embedded broker if it dies."""
        settings, stop = self._settings, shutdown.stop
        bootstrap = settings.kafka.bootstrap_servers or self._start_broker()
        prepare_cluster(settings, bootstrap)
        watcher = threading.Thread(
            target=self._watch, args=(bootstrap, stop), name="watcher", daemon=True
        )
        watcher.start()
        consumer_stop, consumer = self._start_consumer(bootstrap)
        try:
            while not stop.wait(SUPERVISE_EVERY_S):
                broker_died = self._broker is not None and not self._broker.is_running()
                if consumer.refused is not None:
                    raise consumer.refused  # `up` ends as `consume` does: exit code 2
                if broker_died or not consumer.is_alive():
                    consumer_stop.set()
                    _wait_until_leaving(consumer)
                    if broker_died:
                        self._recover_broker()
                    else:
                        log.error("consumer stopped unexpectedly; starting a new one")
                    consumer_stop, consumer = self._start_consumer(bootstrap)
        finally:
            consumer_stop.set()
            shutdown.join(watcher, consumer)
            if self._broker is not None:
                self._broker.stop()

    def _start_broker(self) -> str:
        data_dir = self._settings.store.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self._broker = EmbeddedBroker(log_path=data_dir / "broker.log")
        bootstrap = self._broker.start()
        self._write_broker_pid()
        log.info("embedded broker listening on %s", bootstrap)
        return bootstrap

    def _write_broker_pid(self) -> None:
        """`<data dir>/broker.pid`, so operators (and fault drills) can find the broker."""
        assert self._broker is not None
        pid_file = self._settings.store.data_dir / "broker.pid"
        pid_file.write_text(f"{self._broker.pid}\n", encoding="utf-8")

    def _recover_broker(self) -> None:
        assert self._broker is not None
        log.error("embedded broker died; restarting it and re-publishing unfinished uploads")
        bootstrap = self._broker.start()
        self._write_broker_pid()
        prepare_cluster(self._settings, bootstrap)
        self._resume.set()

    def _start_consumer(self, bootstrap: str) -> tuple[threading.Event, _ConsumerThread]:
        stop, closing = threading.Event(), threading.Event()
        thread = _ConsumerThread(
            closing,
            target=consume_until,
            args=(self._settings, bootstrap, self._metrics, stop, closing),
            name="consumer",
            daemon=True,  # abandoned, not waited for, if it outlives the shutdown timeout
        )
        thread.start()
        return stop, thread

    def _watch(self, bootstrap: str, stop: threading.Event) -> None:
        publish_until(
            self._settings, bootstrap, self._metrics, stop, self._hand_over, resume=self._resume
        )
