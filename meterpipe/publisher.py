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
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from meterpipe.errors import MeterpipeError, PublishError
from meterpipe.kafka_config import ClientConfig, with_logger
from meterpipe.kafka_refusal import config_error

__all__ = ["BrokerReplaced", "EventPublisher", "PublishCancelled"]

FLUSH_TIMEOUT_S = 300.0
WAIT_SLICE_S = 0.2
FULL_WAIT_S = 0.05  # how long a full queue is served before producing again
SERVE_SLICE_S = 0.1  # each wait of the delivery-report thread (it checks for its end between)
METADATA_TIMEOUT_S = 30.0
SUB_BATCH = 5_000  # messages per produce_batch call
MESSAGE_OVERHEAD_BYTES = 1_024  # what librdkafka may add to a message's key and value
Header = tuple[str, str | bytes | None]


class PublishCancelled(MeterpipeError):
    """Publishing stopped because the process is shutting down; nothing was marked sent."""


class BrokerReplaced(PublishCancelled):
    """Publishing stopped because the broker lost its memory; nothing was marked sent."""


@dataclass
class _Room:
    """What librdkafka's queue may hold (queue.buffering.max.messages and .kbytes), and the
    largest message queued so far: a bound on the bytes the queued messages hold."""

    max_messages: int
    max_bytes: int
    max_message_bytes: int
    largest: int = 0

    @classmethod
    def of(cls, config: ClientConfig) -> _Room:
        return cls(
            int(config.get("queue.buffering.max.messages", 100_000)),
            int(config.get("queue.buffering.max.kbytes", 1_048_576)) * 1024,
            int(config.get("message.max.bytes", 1_000_000)) - MESSAGE_OVERHEAD_BYTES,
        )

    def batch_size(self, wanted: int) -> int:
        """How many of the largest messages an empty queue surely takes, up to `wanted`."""
        return max(1, min(wanted, self.max_messages, self.max_bytes // max(self.largest, 1)))

    def fits(self, queued: int, more: int) -> bool:
        """Does a queue holding `queued` messages surely take `more` of the largest size?"""
        total = queued + more
        return not queued or (total <= self.max_messages and total * self.largest <= self.max_bytes)


class _Failures:
    """Delivery failures and fatal errors reported by the producer's callbacks."""

    def __init__(self) -> None:
        self.count = 0
        self.first = ""
        self._lock = threading.Lock()  # callbacks run on the serving and the sending thread

    def add(self, text: str) -> None:
        with self._lock:
            if not self.count:
                self.first = text
            self.count += 1

    def on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:  # only failures are reported (delivery.report.only.error)
            self.add(f"{error.str()} (partition {message.partition()})")

    def on_error(self, error: KafkaError) -> None:
        if error.fatal():  # anything else is transient: librdkafka retries
            self.add(f"fatal producer error: {error.str()}")

    def take(self) -> tuple[int, str]:
        with self._lock:
            taken = self.count, self.first
            self.count, self.first = 0, ""
        return taken


class _DeliveryServer:
    """Serves a producer's delivery reports on a thread of its own while the producer lives.

    Serving them frees every acknowledged message, some 0.7 µs each even when only failures
    are reported; librdkafka does it without the GIL, so on this thread it overlaps with the
    sending thread's produce calls instead of taking a third of that thread's time.
    """

    def __init__(self, producer: Producer) -> None:
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(producer,), name="meterpipe-producer-reports", daemon=True
        )
        self._thread.start()

    def _serve(self, producer: Producer) -> None:
        while not self._done.is_set():
            producer.poll(SERVE_SLICE_S)

    def stop_soon(self) -> None:
        """Stop serving within one wait (a publisher dropped unclosed: its producer is freed)."""
        self._done.set()

    def stop(self) -> None:
        """Stop serving; returns once the thread no longer uses the producer."""
        self._done.set()
        self._thread.join()


def _open_producer(config: ClientConfig, failures: _Failures) -> Producer:
    """A producer reporting to `failures`; a setting librdkafka refuses is a ConfigError."""
    callbacks: dict[str, Any] = {"on_delivery": failures.on_delivery, "error_cb": failures.on_error}
    try:
        return Producer({**with_logger(config), **callbacks})
    except (KafkaException, ValueError, TypeError) as exc:
        raise config_error("producer", config, exc) from exc


def _learn_topic(producer: Producer, topic: str) -> None:
    """Fetch the topic's partitions into the producer's cache; best effort."""
    with contextlib.suppress(KafkaException):  # a send asks again
        producer.list_topics(topic, timeout=METADATA_TIMEOUT_S)


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
        self._server: _DeliveryServer | None = None
        self._failures = _Failures()
        self._room = _Room.of(self._config)

    def _client(self) -> Producer:
        if self._producer is None:
            # Success is `flush()` leaving nothing outstanding: only failures are reported.
            only_failures = {"delivery.report.only.error": True}
            self._failures = _Failures()
            self._producer = _open_producer({**self._config, **only_failures}, self._failures)
            self._server = _DeliveryServer(self._producer)
            weakref.finalize(self, self._server.stop_soon)
            # The topic's partitions, fetched meanwhile.
            threading.Thread(
                target=_learn_topic, args=(self._producer, self._topic),
                name="meterpipe-producer-metadata", daemon=True,
            ).start()  # fmt: skip
        return self._producer

    def connect(self) -> None:
        """Start the producer now, so that it connects and learns the topic meanwhile.

        Started by the first send instead, the producer spends that send's first moments
        getting a producer id and the topic's partitions, its queue full.
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

    def _wait_for_room(self, producer: Producer) -> None:
        """Serve acknowledgements until the full queue has room; ends early when stopping."""
        self.raise_if_stopping()
        producer.poll(FULL_WAIT_S)

    def send(self, keys: Sequence[str], values: Sequence[bytes]) -> None:
        """Queue messages in order; blocks only while librdkafka's queue is full.

        `produce_batch` a few thousand at a time, each batch once the queue surely has room
        for all of it: librdkafka queues whatever fits of a batch, so one that overflowed
        midway would put later messages of a partition before earlier ones. A batch holding
        a message that may be too large goes one `produce()` at a time, so that the refused
        message, and nothing after it, is left out.
        """
        producer = self._client()
        try:
            for start in range(0, len(keys), SUB_BATCH):
                end = start + SUB_BATCH
                self._send_in_order(producer, keys[start:end], values[start:end])
        except KafkaException as exc:  # refused outright, e.g. larger than message.max.bytes
            raise PublishError(f"librdkafka refused a message: {exc.args[0].str()}") from exc
        self._raise_failures()

    def _send_in_order(
        self, producer: Producer, keys: Sequence[str], values: Sequence[bytes]
    ) -> None:
        # A str key is at most 4 UTF-8 bytes a character.
        largest = max(map(len, values), default=0) + 4 * max(map(len, keys), default=0)
        if largest > self._room.max_message_bytes:
            index = 0
            while (index := self._produce_from(producer, keys, values, index)) < len(keys):
                self._wait_for_room(producer)
            return
        self._room.largest = max(self._room.largest, largest)
        step = self._room.batch_size(len(keys))
        for start in range(0, len(keys), step):
            while not self._room.fits(len(producer), step):
                self._wait_for_room(producer)
            self._produce_batch(producer, keys[start : start + step], values[start : start + step])

    def _produce_batch(
        self, producer: Producer, keys: Sequence[str], values: Sequence[bytes]
    ) -> None:
        batch: list[dict[str, Any]] = [
            {"key": key, "value": value} for key, value in zip(keys, values, strict=True)
        ]
        producer.produce_batch(self._topic, batch)
        refused: list[KafkaError] = [m["_error"] for m in batch if "_error" in m]
        if refused:
            raise PublishError(f"librdkafka refused {len(refused)} message(s): {refused[0].str()}")

    def _produce_from(
        self, producer: Producer, keys: Sequence[str], values: Sequence[bytes], start: int
    ) -> int:
        """Produce messages from `start` on until done or the queue is full; the index reached."""
        produce, topic = producer.produce, self._topic
        index = start
        try:
            for index in range(start, len(keys)):
                produce(topic, values[index], keys[index])
        except BufferError:
            return index
        return len(keys)

    def send_with_headers(self, key: str | None, value: bytes, headers: list[Header]) -> None:
        """Queue one message with headers (dead letters); rare, so no batching tricks."""
        producer = self._client()
        while True:
            try:
                producer.produce(self._topic, value, key, headers=headers)
                break
            except BufferError:
                self._wait_for_room(producer)
            except KafkaException as exc:
                raise PublishError(f"librdkafka refused a message: {exc.args[0].str()}") from exc
        producer.poll(0)

    def flush(self) -> None:
        """Wait until every queued message is acknowledged; raise PublishError if any failed."""
        if self._producer is None:
            return
        deadline = time.monotonic() + FLUSH_TIMEOUT_S
        while (remaining := self._producer.flush(WAIT_SLICE_S)) and time.monotonic() < deadline:
            self.raise_if_stopping()
        lost = f"{remaining} message(s) unacknowledged after flush" if remaining else ""
        self._raise_failures(lost)

    def _raise_failures(self, unacknowledged: str = "") -> None:
        count, first = self._failures.take()
        if unacknowledged:
            count, first = count + 1, first or unacknowledged
        if count:
            # A failed producer may be fenced for good (idempotence state lost with a broker
            # restart): start over with a fresh one next time.
            self._release()
            raise PublishError(f"{count} delivery failure(s), first: {first}")

    def reset(self) -> None:
        """Drop the producer and everything it still holds (after the broker lost its state).

        The idempotent producer's sequence numbers belong to the old broker; a fresh one
        starts clean, and the dropped messages are published again by the caller.
        """
        if self._producer is not None:
            self._producer.purge(in_queue=True, in_flight=True)
        self._release()

    def _release(self) -> None:
        """Let go of the producer (librdkafka frees it once nothing refers to it)."""
        if self._server is not None:
            self._server.stop()
        self._producer, self._server = None, None

    def close(self) -> None:
        """Flush what is queued (drop it when stopping); the producer is released either way."""
        try:
            if self.stopping():
                self.reset()
            else:
                self.flush()
        finally:
            self._release()

    def __enter__(self) -> EventPublisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
