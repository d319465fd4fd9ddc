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

import contextlib
import threading
import time
from collections.abc import Sequence
from types import TracebackType

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from meterpipe.errors import MeterpipeError, PublishError
from meterpipe.kafka_config import ClientConfig, with_logger

__all__ = ["BrokerReplaced", "EventPublisher", "PublishCancelled"]

POLL_EVERY = 5_000
FLUSH_TIMEOUT_S = 300.0
WAIT_SLICE_S = 0.2
METADATA_TIMEOUT_S = 30.0


def _learn_topic(producer: Producer, topic: str) -> None:
    """Fetch `topic`'s partitions into the producer's cache; best effort (a send asks again)."""
    with contextlib.suppress(KafkaException):
        producer.list_topics(topic, timeout=METADATA_TIMEOUT_S)


class PublishCancelled(MeterpipeError):
    """Publishing stopped because the process is shutting down; nothing was marked sent."""


class BrokerReplaced(PublishCancelled):
    """Publishing stopped because the broker lost its memory; nothing was marked sent."""


class EventPublisher:
    """Produces keyed messages to one topic and tracks delivery failures."""

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
        self._producer: Producer | None = None
        self._failure_count = 0
        self._first_failure = ""

    def _client(self) -> Producer:
        if self._producer is None:
            callbacks = {"error_cb": self._on_error, "on_delivery": self._on_delivery}
            # Success is `flush()` leaving nothing outstanding: a callback per delivered
            # message would only cost a Python call each. Failures are still reported.
            only_failures = {"delivery.report.only.error": True}
            self._producer = Producer({**with_logger(self._config), **callbacks, **only_failures})
            threading.Thread(
                target=_learn_topic, args=(self._producer, self._topic),
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

    def _fail(self, reason: str) -> None:
        self._failure_count += 1
        self._first_failure = self._first_failure or reason

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            self._fail(f"fatal producer error: {error.str()}")

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._fail(f"{error.str()} (partition {message.partition()})")

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
        producer = self._client()
        produce, topic = producer.produce, self._topic
        for index, (key, value) in enumerate(zip(keys, values, strict=True)):
            while True:
                try:
                    produce(topic, value, key)
                    break
                except BufferError:
                    self.raise_if_stopping()
                    producer.poll(0.05)
            if index % POLL_EVERY == 0:
                producer.poll(0)
        self._raise_failures()

    def send_with_headers(
        self, key: str | None, value: bytes, headers: list[tuple[str, str | bytes | None]]
    ) -> None:
        """Queue one message with headers (dead letters); rare, so no batching tricks."""
        producer = self._client()
        while True:
            try:
                producer.produce(self._topic, value, key, headers=headers)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)

    def flush(self) -> None:
        """Wait until every queued message is acknowledged; raise PublishError if any failed."""
        if self._producer is None:
            return
        deadline = time.monotonic() + FLUSH_TIMEOUT_S
        while (remaining := self._producer.flush(WAIT_SLICE_S)) and time.monotonic() < deadline:
            self.raise_if_stopping()
        if remaining:
            self._fail(f"{remaining} message(s) unacknowledged after flush")
        self._raise_failures()

    def _raise_failures(self) -> None:
        if self._failure_count:
            message = f"{self._failure_count} delivery failure(s), first: {self._first_failure}"
            # A failed producer may be fenced for good (idempotence state lost with a broker
            # restart): start over with a fresh one next time.
            self._producer, self._failure_count, self._first_failure = None, 0, ""
            raise PublishError(message)

    def reset(self) -> None:
        """Drop the producer and everything it still holds (after the broker lost its state).

        The idempotent producer's sequence numbers belong to the old broker; a fresh one
        starts clean, and the dropped messages are published again by the caller.
        """
        if self._producer is not None:
            self._producer.purge()
        self._producer, self._failure_count, self._first_failure = None, 0, ""

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
