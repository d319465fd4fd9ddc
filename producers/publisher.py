"""Sending encoded events to Kafka with the idempotent producer, and knowing they arrived.

Success is only claimed after `flush()` returns with nothing outstanding and no delivery
error was reported: that is the moment an upload's events are safely in the broker.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

from confluent_kafka import KafkaError, Message, Producer

from meterpipe.errors import PublishError
from meterpipe.kafka_config import ClientConfig, with_logger

__all__ = ["EventPublisher"]

POLL_EVERY = 5_000
FLUSH_TIMEOUT_S = 300.0


class EventPublisher:
    """Produces keyed messages to one topic and tracks delivery failures."""

    def __init__(self, config: ClientConfig, topic: str) -> None:
        self._config = dict(config)
        self._topic = topic
        self._producer: Producer | None = None
        self._failure_count = 0
        self._first_failure = ""

    def _client(self) -> Producer:
        if self._producer is None:
            callbacks = {"error_cb": self._on_error, "on_delivery": self._on_delivery}
            self._producer = Producer({**with_logger(self._config), **callbacks})
        return self._producer

    def _fail(self, reason: str) -> None:
        self._failure_count += 1
        self._first_failure = self._first_failure or reason

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            self._fail(f"fatal producer error: {error.str()}")

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._fail(f"{error.str()} (partition {message.partition()})")

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
        remaining = self._producer.flush(FLUSH_TIMEOUT_S)
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
        """Flush what is queued; the producer is released either way."""
        try:
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
