"""What `meterpipe uploads show` says of an upload's conflicts: each field that differs
from the eventId's first arrival, with both values.

The store keeps, for a conflict, this event's compared fields and where the first arrival
is in the events topic (`consumers.batch.kafka_position`). The first arrival's message is
read back from there with a plain consumer (assigned at that offset, no group, nothing
committed) and decoded with the codec. A message no longer retained, or a position of an
earlier log that now holds another event, is said to be gone: this row's values are still
shown.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from consumers.batch import split_position
from consumers.content_digest import differences
from consumers.store.records import ConflictRecord
from meterpipe.kafka_config import consumer_config, with_logger
from meterpipe.settings import KafkaSettings
from schemas.codec import EventCodec

__all__ = ["describe_conflicts", "read_first_arrivals"]

READ_TIMEOUT_S = 10.0  # for all the messages of one `uploads show`
POLL_S = 0.5


def read_first_arrivals(
    kafka: KafkaSettings, bootstrap: str, codec: EventCodec, positions: Iterable[int]
) -> dict[int, dict[str, Any]]:
    """The decoded event at each position still retained (others are left out)."""
    config = consumer_config(kafka, bootstrap, f"meterpipe-show-{uuid.uuid4().hex[:8]}")
    consumer = Consumer({**with_logger(config), "enable.auto.commit": False})
    deadline = time.monotonic() + READ_TIMEOUT_S
    found: dict[int, dict[str, Any]] = {}
    try:
        for position in sorted(set(positions)):
            partition, offset = split_position(position)
            consumer.assign([TopicPartition(kafka.topic, partition, offset)])
            value = _value_at(consumer, partition, offset, deadline)
            if value is not None:
                decoded = codec.decode([value])
                if decoded.frame.height:
                    found[position] = decoded.frame.row(0, named=True)
    finally:
        consumer.close()
    return found


def _value_at(consumer: Consumer, partition: int, offset: int, deadline: float) -> bytes | None:
    """The value of the message at (partition, offset), or None if it is not there."""
    while time.monotonic() < deadline:
        message = consumer.poll(POLL_S)
        if message is None:
            continue
        if message.error() is not None:
            return None
        # Below the log start the consumer resets elsewhere: that is another message.
        if message.partition() != partition or message.offset() != offset:
            return None
        value = message.value()
        return value if isinstance(value, bytes) else None
    return None


def _same_event(first: dict[str, Any], conflict: ConflictRecord) -> bool:
    """Whether the decoded message is the first arrival the conflict names."""
    return (first.get("eventId"), first.get("uploadRef"), first.get("rowNumber")) == (
        conflict.event_id, conflict.first_upload, conflict.first_row_number,
    )  # fmt: skip


def describe_conflicts(
    conflicts: list[ConflictRecord], first_arrivals: dict[int, dict[str, Any]] | None
) -> list[dict[str, Any]]:
    """The stable JSON objects of `uploads show --json`'s `conflictDetails`.

    `first_arrivals` None: the topic was not read (no Kafka cluster configured).
    """
    described = []
    for conflict in conflicts:
        this = conflict.values or {}
        partition, offset = (None, None)
        first: dict[str, Any] | None = None
        retained: bool | None = None
        if conflict.first_position is not None:
            partition, offset = split_position(conflict.first_position)
            if first_arrivals is not None:
                first = first_arrivals.get(conflict.first_position)
                retained = first is not None and _same_event(first, conflict)
        filled = conflict.first_position is not None
        fields = differences(first, this) if retained or not filled else []
        described.append({
            "eventId": conflict.event_id,
            "rowNumber": conflict.row_number,
            "firstUpload": conflict.first_upload,
            "firstRowNumber": conflict.first_row_number,
            "firstPartition": partition,
            "firstOffset": offset,
            "firstFilled": filled,
            "firstRetained": retained if filled else None,
            "differences": fields,
            "values": this,
        })  # fmt: skip
    return described
