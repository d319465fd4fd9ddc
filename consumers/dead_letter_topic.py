"""Reading the dead-letter topic, and re-driving its events through the pipeline.

The dead-letter topic is the record of what could not count and why; `meterpipe dlq`
lets a person see it and, once the cause is fixed (a billing period put on hold, a meter
added), send those events round again. A replay re-produces each original message, key
and bytes unchanged, to the events topic with a `meterpipe.replay-of` header; the
consumer then gives a dead-lettered row one more chance and dedupe keeps it counted at
most once, however often it is replayed. Reading is a plain assignment from the start
of every partition to its end: no consumer group, nothing committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from consumers.dead_letters import REPLAY_HEADER
from meterpipe.errors import PublishError
from meterpipe.kafka_config import consumer_config, producer_config, with_logger
from meterpipe.publisher import EventPublisher
from meterpipe.settings import KafkaSettings

__all__ = ["DeadLetterEntry", "read_dead_letters", "replay_dead_letters"]

READ_TIMEOUT_S = 30.0
NOT_REPLAYABLE = frozenset({"too_large"})  # the dead letter holds only the message's head


@dataclass(frozen=True)
class DeadLetterEntry:
    """One dead letter as `meterpipe dlq list` shows it."""

    partition: int
    offset: int
    key: str | None
    value: bytes
    headers: dict[str, str]

    @property
    def reason(self) -> str:
        """Why it was refused (`invalid_quantity`, `period_closed`, `undecodable`, ...)."""
        return self.headers.get("meterpipe.reason", "")

    def to_json(self) -> dict[str, Any]:
        """The stable JSON object of `meterpipe dlq list --json`."""
        row = self.headers.get("meterpipe.row")
        return {
            "partition": self.partition,
            "offset": self.offset,
            "reason": self.reason,
            "message": self.headers.get("meterpipe.message", ""),
            "upload": self.headers.get("meterpipe.upload"),
            "row": int(row) if row is not None else None,
            "eventId": self.key,
            "source": {
                "topic": self.headers.get("meterpipe.source.topic"),
                "partition": int(self.headers.get("meterpipe.source.partition", -1)),
                "offset": int(self.headers.get("meterpipe.source.offset", -1)),
            },
        }


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value or ""


def read_dead_letters(
    kafka: KafkaSettings, bootstrap: str, reason: str | None = None
) -> Iterator[DeadLetterEntry]:
    """Every dead letter from the start of the topic to its current end, oldest first."""
    config = consumer_config(kafka, bootstrap, f"meterpipe-dlq-{uuid.uuid4().hex[:8]}")
    consumer = Consumer(
        {**with_logger(config), "enable.partition.eof": True, "enable.auto.commit": False}
    )
    try:
        topic = consumer.list_topics(kafka.dlq_topic, timeout=READ_TIMEOUT_S).topics.get(
            kafka.dlq_topic
        )
        if topic is None or topic.error is not None:
            return
        pending = set(topic.partitions)
        consumer.assign([TopicPartition(kafka.dlq_topic, p, OFFSET_BEGINNING) for p in pending])
        while pending:
            message = consumer.poll(READ_TIMEOUT_S)
            if message is None:
                raise PublishError(f"dead-letter topic {kafka.dlq_topic}: no answer while reading")
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    raise PublishError(f"reading dead letters: {error.str()}")
                pending.discard(message.partition() or 0)
                continue
            key = message.key()
            entry = DeadLetterEntry(
                partition=message.partition() or 0,
                offset=message.offset() or 0,
                key=key.decode("utf-8", "replace") if key is not None else None,
                value=message.value() or b"",
                headers={header[0]: _text(header[1]) for header in message.headers() or ()},
            )
            if reason is None or entry.reason == reason:
                yield entry
    finally:
        consumer.close()


def replay_dead_letters(
    kafka: KafkaSettings, bootstrap: str, entries: Iterator[DeadLetterEntry]
) -> tuple[int, int]:
    """Re-produce each replayable entry to the events topic; return (replayed, skipped)."""
    publisher = EventPublisher(producer_config(kafka, bootstrap), kafka.topic)
    replayed = skipped = 0
    try:
        for entry in entries:
            if entry.reason in NOT_REPLAYABLE:
                skipped += 1
                continue
            mark = f"{entry.partition}:{entry.offset}"
            publisher.send_with_headers(entry.key, entry.value, [(REPLAY_HEADER, mark)])
            replayed += 1
        publisher.flush()
    finally:
        publisher.close()
    return replayed, skipped
