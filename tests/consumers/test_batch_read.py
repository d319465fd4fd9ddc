"""Reading a batch keeps the cyclic garbage collector away from its Message objects."""

from __future__ import annotations

import gc
import time
import uuid
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from consumers.consumer import read_batch
from meterpipe.broker import EmbeddedBroker
from meterpipe.kafka_config import consumer_config, producer_config
from meterpipe.settings import KafkaSettings
from meterpipe.topics import ensure_topics
from producers.publisher import EventPublisher

MESSAGES = 20_000
READ_TIMEOUT_S = 120.0


def test_reading_batches_runs_no_collection_and_leaves_the_collector_on(
    broker: EmbeddedBroker,
) -> None:
    tag = uuid.uuid4().hex[:8]
    kafka = KafkaSettings(topic=f"gc-read-{tag}", dlq_topic=f"gc-read-dlq-{tag}")
    bootstrap = broker.bootstrap_servers
    ensure_topics(kafka, bootstrap)
    publisher = EventPublisher(producer_config(kafka, bootstrap), kafka.topic)
    publisher.send([str(n) for n in range(MESSAGES)], [b"v%d" % n for n in range(MESSAGES)])
    publisher.flush()
    consumer = Consumer(consumer_config(kafka, bootstrap, f"gc-read-{tag}"))
    partitions = consumer.list_topics(kafka.topic, timeout=30).topics[kafka.topic].partitions
    consumer.assign([TopicPartition(kafka.topic, p, OFFSET_BEGINNING) for p in partitions])
    reading = False
    collections: list[int] = []

    def noticed(phase: str, info: dict[str, Any]) -> None:
        if reading and phase == "start":
            collections.append(info["generation"])

    gc.callbacks.append(noticed)
    values: list[bytes] = []
    largest = 0
    deadline = time.monotonic() + READ_TIMEOUT_S
    try:
        while len(values) < MESSAGES and time.monotonic() < deadline:
            reading = True
            raw = read_batch(consumer, MESSAGES, 1.0)
            reading = False
            assert gc.isenabled()
            if raw is not None:
                values += [value or b"" for value in raw.values]
                largest = max(largest, len(raw.values))
    finally:
        gc.callbacks.remove(noticed)
        consumer.close()
    assert sorted(values) == sorted(b"v%d" % n for n in range(MESSAGES))
    # A batch of thousands of tracked Message objects would set off collections (every 700
    # allocations by default) if the collector were on while it is read.
    assert largest > 5 * gc.get_threshold()[0]
    assert collections == []


def test_what_other_threads_allocated_during_the_pause_is_collected_after_it(
    broker: EmbeddedBroker,
) -> None:
    kafka = KafkaSettings(topic=f"gc-idle-{uuid.uuid4().hex[:8]}")
    ensure_topics(kafka, broker.bootstrap_servers)
    consumer = Consumer(consumer_config(kafka, broker.bootstrap_servers, "gc-idle"))
    consumer.subscribe([kafka.topic])
    gc.disable()
    try:
        # As if other threads had allocated while the read waited: young objects that
        # the collector, with no further allocation, would never get to look at.
        allocated: list[list[int]] = [[] for _ in range(5 * gc.get_threshold()[0])]
        assert read_batch(consumer, 10, 0.1) is None
        young = gc.get_count()[0]
        assert gc.isenabled()
    finally:
        gc.enable()
        consumer.close()
    assert len(allocated) > gc.get_threshold()[0] >= young


def test_the_collector_is_back_on_when_reading_fails(broker: EmbeddedBroker) -> None:
    kafka = KafkaSettings()
    consumer = Consumer(consumer_config(kafka, broker.bootstrap_servers, "gc-closed"))
    consumer.close()
    with pytest.raises(RuntimeError):
        read_batch(consumer, 10, 0.1)
    assert gc.isenabled()
