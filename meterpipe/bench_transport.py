"""The transport ceiling: how fast confluent-kafka alone moves messages of our size.

Pre-encoded events (a sample of the benchmark file's, cycled) are produced and consumed
with the best settings found (large batches, lz4, `fetch.queue.backoff.ms=10`); meterpipe's
phases are reported as a fraction of these figures, measured in the same run. Real events,
not random bytes of their size: with compression on, what the broker handles depends on
what the messages hold, and random bytes would not compress.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Sequence

from confluent_kafka import Consumer, Producer

from meterpipe.kafka_config import consumer_config, producer_config
from meterpipe.settings import KafkaSettings

__all__ = ["consume_ceiling", "produce_ceiling"]

CONSUME_TIMEOUT_S = 300.0


def produce_ceiling(
    kafka: KafkaSettings, bootstrap: str, count: int, sample: Sequence[bytes]
) -> float:
    """Messages per second produced and acknowledged, keyed like events, `sample` cycled."""
    keys = [str(uuid.uuid4()) for _ in range(count)]
    producer = Producer(producer_config(kafka, bootstrap))
    started = time.perf_counter()
    for index, (key, value) in enumerate(zip(keys, itertools.cycle(sample))):
        while True:
            try:
                producer.produce(kafka.topic, value, key)
                break
            except BufferError:
                producer.poll(0.05)
        if index % 5_000 == 0:
            producer.poll(0)
    if producer.flush(CONSUME_TIMEOUT_S):
        raise RuntimeError("transport ceiling: messages left unacknowledged")
    return count / (time.perf_counter() - started)


def consume_ceiling(kafka: KafkaSettings, bootstrap: str, count: int) -> float:
    """Messages per second read back, timed from the first message."""
    config = consumer_config(kafka, bootstrap, f"ceiling-{uuid.uuid4().hex[:8]}")
    consumer = Consumer(config)
    consumer.subscribe([kafka.topic])
    read, started = 0, 0.0
    deadline = time.monotonic() + CONSUME_TIMEOUT_S
    try:
        while read < count and time.monotonic() < deadline:
            batch = consumer.consume(10_000, 1.0)
            if batch and not started:
                started = time.perf_counter()
            read += sum(1 for message in batch if message.error() is None)
    finally:
        consumer.close()
    if read < count:
        raise RuntimeError(f"transport ceiling: read {read} of {count} messages")
    return count / (time.perf_counter() - started)
