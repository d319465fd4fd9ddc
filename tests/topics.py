"""Reading a topic back in a test, from the broker itself."""

from __future__ import annotations

import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

from tests.processes import wait_for

READ_TIMEOUT_S = 120.0


def read_topic(bootstrap: str, topic: str, count: int, *, settle_s: float = 0.0) -> list[Message]:
    """The messages of `topic` once at least `count` are there, and any that follow within
    `settle_s` (to catch more than expected). Assigned, not subscribed: no group to join,
    which takes a new group seconds."""
    reader = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex}",
        "auto.offset.reset": "earliest",
    })  # fmt: skip
    partitions = reader.list_topics(topic, timeout=30).topics[topic].partitions
    reader.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    found: list[Message] = []

    def read(timeout: float) -> None:
        found.extend(m for m in reader.consume(1_000, timeout) if m.error() is None)

    def enough() -> bool:
        read(1.0)
        return len(found) >= count

    try:
        wait_for(enough, READ_TIMEOUT_S, f"{count} messages on {topic}")
        if settle_s:
            read(settle_s)
    finally:
        reader.close()
    return found
