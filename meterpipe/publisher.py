"""Sending encoded events to Kafka with the idempotent producer, and knowing they arrived.

Success is only claimed after `flush()` returns with nothing outstanding and no delivery
error was reported: that is the moment an upload's events are safely in the broker.
Given a stop event, waiting (full queue, flush) ends early with `PublishCancelled`, and
closing drops what is still queued: the upload it belongs to is not marked published, so
it is sent again after the restart. Given a `replaced` event, set when the broker was
replaced by one that lost its memory, waiting ends early with `BrokerReplaced`: what the
producer holds can no longer be acknowledged, and the upload is sent again at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from types import TracebackType

from meterpipe._direct_producer import DirectProducer
from meterpipe.errors import MeterpipeError, PublishError
from meterpipe.kafka_config import KAFKA_LOG, ClientConfig
from meterpipe.librdkafka import librdkafka_path, librdkafka_settings, refusal_as_config_error

__all__ = ["BrokerReplaced", "EventPublisher", "PublishCancelled"]

FLUSH_TIMEOUT_S = 300.0
WAIT_SLICE_MS = 200
METADATA_TIMEOUT_MS = 30_000


def _open_producer(config: ClientConfig, topic: str) -> DirectProducer:
    """A C producer for `topic`; a setting librdkafka refuses is a ConfigError naming it."""
    with refusal_as_config_error():
        return DirectProducer(librdkafka_path(), librdkafka_settings(config), topic, KAFKA_LOG)


class PublishCancelled(MeterpipeError):
    """Publishing stopped because the process is shutting down; nothing was marked sent."""


class BrokerReplaced(PublishCancelled):
    """Publishing stopped because the broker lost its memory; nothing was marked sent."""


class EventPublisher:
    """Produces keyed messages to one topic and tracks delivery failures.

    The producer is librdkafka driven from C (`meterpipe/_direct_producer.c`): a chunk of
    events is one call, where confluent-kafka's `produce()` cost a Python call per event.
    """

    def __init__(
        self,
        config: ClientConfig,
        topic: str,
        stop: threading.Event | None = None,
        replaced: threading.Event | None = None,
    ) -> None:
        self._config = dict(config)
        self._topic = topic
        self._stop = stop
        self._replaced = replaced
        self._producer: DirectProducer | None = None

    def _client(self) -> DirectProducer:
        if self._producer is None:
            # Success is `flush()` leaving nothing outstanding: only failures are reported.
            only_failures = {"delivery.report.only.error": True}
            self._producer = _open_producer({**self._config, **only_failures}, self._topic)
            # The topic's partitions, fetched meanwhile; best effort (a send asks again).
            threading.Thread(
                target=self._producer.learn_topic, args=(METADATA_TIMEOUT_MS,),
                name="meterpipe-producer-metadata", daemon=True,
            ).start()  # fmt: skip
        return self._producer

    def connect(self) -> None:
        """Start the producer now, so that it connects and learns the topic meanwhile.

        Started by the first send instead, the producer spent that send's first moments
        getting a producer id and the topic's partitions, its queue full: sending 1M rows
        took about 0.4 s longer (four alternating pairs), a one-row publish 0.5 s.
        """
        self._client()

    def stopping(self) -> bool:
        """True once the process was asked to stop."""
        return self._stop is not None and self._stop.is_set()

    def raise_if_stopping(self) -> None:
        """PublishCancelled once the process was asked to stop, or the broker was replaced."""
        if self.stopping():
            raise PublishCancelled(f"publishing to {self._topic} stopped by shutdown")
        if self._replaced is not None and self._replaced.is_set():
            raise BrokerReplaced(f"publishing to {self._topic} stopped: the broker was replaced")

    def send(self, keys: Sequence[str], values: Sequence[bytes]) -> None:
        """Queue messages; blocks only while librdkafka's queue is full."""
        try:
            self._client().send(keys, values, self.raise_if_stopping)
        except RuntimeError as exc:  # refused outright, e.g. larger than message.max.bytes
            raise PublishError(str(exc)) from exc
        self._raise_failures()

    def send_with_headers(
        self, key: str | None, value: bytes, headers: list[tuple[str, str | bytes | None]]
    ) -> None:
        """Queue one message with headers (dead letters); rare, so no batching tricks."""
        try:
            self._client().send_one(key, value, headers, self.raise_if_stopping)
        except RuntimeError as exc:
            raise PublishError(str(exc)) from exc

    def flush(self) -> None:
        """Wait until every queued message is acknowledged; raise PublishError if any failed."""
        if self._producer is None:
            return
        deadline = time.monotonic() + FLUSH_TIMEOUT_S
        while (remaining := self._producer.flush(WAIT_SLICE_MS)) and time.monotonic() < deadline:
            self.raise_if_stopping()
        lost = f"{remaining} message(s) unacknowledged after flush" if remaining else ""
        self._raise_failures(lost)

    def _raise_failures(self, unacknowledged: str = "") -> None:
        count, first = self._producer.take_failures() if self._producer else (0, "")
        if unacknowledged:
            count, first = count + 1, first or unacknowledged
        if count:
            # A failed producer may be fenced for good (idempotence state lost with a broker
            # restart): start over with a fresh one next time.
            self._producer = None
            raise PublishError(f"{count} delivery failure(s), first: {first}")

    def reset(self) -> None:
        """Drop the producer and everything it still holds (after the broker lost its state).

        The idempotent producer's sequence numbers belong to the old broker; a fresh one
        starts clean, and the dropped messages are published again by the caller.
        """
        if self._producer is not None:
            self._producer.purge()
        self._producer = None

    def close(self) -> None:
        """Flush what is queued (drop it when stopping); the producer is released either way."""
        try:
            if self.stopping():
                self.reset()
            else:
                self.flush()
        finally:
            self._producer = None

    def __enter__(self) -> EventPublisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
