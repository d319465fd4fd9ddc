"""Reading a batch with the group member: columns that say what the topic holds (null keys
and values too), replayed messages marked, in eager and cooperative groups, and a rebalance
callback's exception raised to the reader."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Producer

from consumers.batch import RawBatch
from consumers.dead_letters import REPLAY_HEADER
from consumers.group_member import open_consumer, read_batch
from meterpipe.broker import EmbeddedBroker, free_port
from meterpipe.errors import ConfigError
from meterpipe.kafka_config import consumer_config, producer_config
from meterpipe.publisher import EventPublisher
from meterpipe.settings import KafkaSettings
from meterpipe.topics import ensure_topics
from tests.topics import read_topic

MESSAGES = 3_000
READ_TIMEOUT_S = 120.0


def _from_the_start(kind: str, partitions: list[int]) -> list[tuple[int, int]] | None:
    return [(p, OFFSET_BEGINNING) for p in partitions] if kind == "assign" else None


def _ignore(statistics: str) -> None:
    del statistics


def _published(broker: EmbeddedBroker, name: str) -> KafkaSettings:
    """A fresh topic holding MESSAGES keyed messages, one replayed dead letter, and a
    message with neither key nor value."""
    tag = uuid.uuid4().hex[:8]
    kafka = KafkaSettings(topic=f"{name}-{tag}", dlq_topic=f"{name}-dlq-{tag}")
    ensure_topics(kafka, broker.bootstrap_servers)
    publisher = EventPublisher(producer_config(kafka, broker.bootstrap_servers), kafka.topic)
    publisher.send([f"k{n}" for n in range(MESSAGES)], [b"v%d" % n for n in range(MESSAGES)])
    publisher.send_with_headers("again", b"replayed", [(REPLAY_HEADER, "3:17")])
    publisher.flush()
    tombstones = Producer(producer_config(kafka, broker.bootstrap_servers))
    tombstones.produce(kafka.topic, value=None, key=None)
    assert tombstones.flush(READ_TIMEOUT_S) == 0
    return kafka


def _read_all(broker: EmbeddedBroker, kafka: KafkaSettings, count: int) -> list[RawBatch]:
    config = consumer_config(kafka, broker.bootstrap_servers, f"read-{uuid.uuid4().hex}")
    consumer = open_consumer(config, kafka.topic, _from_the_start, _ignore)
    consumer.subscribe()
    batches: list[RawBatch] = []
    deadline = time.monotonic() + READ_TIMEOUT_S
    try:
        while sum(len(b.values) for b in batches) < count and time.monotonic() < deadline:
            raw = read_batch(consumer, 1_000, 1.0)
            if raw is not None:
                batches.append(raw)
    finally:
        consumer.close()
    return batches


@pytest.mark.parametrize("strategy", ["range,roundrobin", "cooperative-sticky"])
def test_a_batch_is_read_as_the_topic_holds_it(broker: EmbeddedBroker, strategy: str) -> None:
    # Eager groups assign and revoke everything at once; cooperative ones incrementally.
    kafka = _published(broker, "lists")
    kafka = kafka.model_copy(
        update={"client_overrides": {"partition.assignment.strategy": strategy}}
    )
    batches = _read_all(broker, kafka, MESSAGES + 2)
    read = {
        key: (partition, offset, value, index in batch.replayed)
        for batch in batches
        for index, (partition, offset, key, value) in enumerate(
            zip(
                batch.partitions.tolist(), batch.offsets.tolist(), batch.keys.to_pylist(),
                batch.values.to_pylist(), strict=True,
            )
        )
    }  # fmt: skip
    truth = read_topic(broker.bootstrap_servers, kafka.topic, MESSAGES + 2)
    assert len(read) == len(truth) == MESSAGES + 2
    assert read[None][2] is None
    assert read == {
        m.key(): (m.partition(), m.offset(), m.value(), m.key() == b"again") for m in truth
    }


def test_an_exception_in_a_rebalance_callback_is_raised_by_the_read(
    broker: EmbeddedBroker,
) -> None:
    kafka = KafkaSettings(topic=f"rebalance-{uuid.uuid4().hex[:8]}")
    ensure_topics(kafka, broker.bootstrap_servers)

    def refuse(kind: str, partitions: list[int]) -> None:
        if kind == "assign":
            raise LookupError(f"{kind} of {len(partitions)} partitions refused")

    config = consumer_config(kafka, broker.bootstrap_servers, f"refuse-{uuid.uuid4().hex}")
    consumer = open_consumer(config, kafka.topic, refuse, _ignore)
    consumer.subscribe()

    def read_until_raised() -> None:
        deadline = time.monotonic() + READ_TIMEOUT_S
        while time.monotonic() < deadline:
            read_batch(consumer, 10, 0.5)

    try:
        with pytest.raises(LookupError, match="assign of 6 partitions refused"):
            read_until_raised()
    finally:
        consumer.close()


def test_a_setting_librdkafka_refuses_is_a_config_error_naming_it() -> None:
    kafka = KafkaSettings(client_overrides={"fetch.queue.backoff.ms": "soon"})
    config = consumer_config(kafka, f"127.0.0.1:{free_port()}", f"bad-{uuid.uuid4().hex}")
    with pytest.raises(ConfigError, match=r"fetch\.queue\.backoff\.ms"):
        open_consumer(config, kafka.topic, _from_the_start, _ignore)


def test_a_closed_consumer_cannot_read(broker: EmbeddedBroker) -> None:
    kafka = KafkaSettings()
    config = consumer_config(kafka, broker.bootstrap_servers, f"closed-{uuid.uuid4().hex}")
    consumer = open_consumer(config, kafka.topic, _from_the_start, _ignore)
    consumer.close()
    with pytest.raises(RuntimeError, match="closed"):
        read_batch(consumer, 10, 0.1)
