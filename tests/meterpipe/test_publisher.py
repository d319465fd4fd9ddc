"""The publisher: a full buffer makes it wait, its waits end early when the process stops
or the broker is replaced, and every delivery failure fails the flush."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
from confluent_kafka import Producer

from meterpipe.broker import EmbeddedBroker, free_port
from meterpipe.errors import PublishError
from meterpipe.kafka_config import producer_config
from meterpipe.publisher import BrokerReplaced, EventPublisher, PublishCancelled
from meterpipe.settings import KafkaSettings
from meterpipe.topics import ensure_topics
from tests.processes import wait_for
from tests.topics import read_topic


def test_a_full_buffer_makes_sending_wait_and_loses_nothing(broker: EmbeddedBroker) -> None:
    tag = uuid.uuid4().hex[:8]
    kafka = KafkaSettings(
        topic=f"buffer-{tag}", dlq_topic=f"buffer-dlq-{tag}", producer_buffer_kbytes=16
    )
    ensure_topics(kafka, broker.bootstrap_servers)
    config = producer_config(kafka, broker.bootstrap_servers)
    assert config["queue.buffering.max.kbytes"] == 16
    # 400 KB of messages through a 16 KB buffer: librdkafka refuses most of them at first.
    values = [f"{n:06d}".encode() * 34 for n in range(2_000)]
    publisher = EventPublisher(config, kafka.topic)
    publisher.send([str(n) for n in range(len(values))], values)
    publisher.flush()
    messages = read_topic(broker.bootstrap_servers, kafka.topic, len(values))
    assert sorted(m.value() or b"" for m in messages) == values


def test_a_full_buffer_keeps_each_keys_messages_in_order(broker: EmbeddedBroker) -> None:
    # Rows sharing an eventId must arrive in row order: the first one owns it.
    tag = uuid.uuid4().hex[:8]
    kafka = KafkaSettings(
        topic=f"order-{tag}", dlq_topic=f"order-dlq-{tag}", producer_buffer_kbytes=16
    )
    ensure_topics(kafka, broker.bootstrap_servers)
    keys = [f"key-{n % 7}" for n in range(3_000)]
    values = [f"{n:06d}".encode() * 30 for n in range(len(keys))]
    publisher = EventPublisher(producer_config(kafka, broker.bootstrap_servers), kafka.topic)
    publisher.send(keys[:1_000], values[:1_000])
    publisher.send(keys[1_000:], values[1_000:])
    publisher.flush()
    messages = read_topic(broker.bootstrap_servers, kafka.topic, len(values))
    arrived: dict[bytes | None, list[bytes]] = {}
    for message in sorted(messages, key=lambda m: (m.partition(), m.offset())):
        arrived.setdefault(message.key(), []).append(message.value() or b"")
    sent: dict[bytes | None, list[bytes]] = {}
    for key, value in zip(keys, values, strict=True):
        sent.setdefault(key.encode(), []).append(value)
    assert arrived == sent


def _unacknowledged(stop: threading.Event, replaced: threading.Event) -> EventPublisher:
    """A publisher holding one message no broker will ever acknowledge (nothing listens)."""
    config = producer_config(KafkaSettings(), f"127.0.0.1:{free_port()}")
    publisher = EventPublisher(config, "events", stop, replaced)
    publisher.send(["key"], [b"value"])
    return publisher


@pytest.mark.parametrize("which", ["stop", "replaced"])
def test_flush_waiting_for_a_lost_broker_ends_at_once(which: str) -> None:
    stop, replaced = threading.Event(), threading.Event()
    publisher = _unacknowledged(stop, replaced)
    (stop if which == "stop" else replaced).set()
    expected = BrokerReplaced if which == "replaced" else PublishCancelled
    started = time.monotonic()
    with pytest.raises(PublishCancelled) as raised:
        publisher.flush()
    # Without the event, flush would wait for the 120 s message timeout.
    assert time.monotonic() - started < 5
    assert type(raised.value) is expected
    publisher.reset()


def test_a_message_that_is_never_acknowledged_fails_the_flush() -> None:
    # Only failed deliveries are reported by librdkafka: this one must still surface.
    kafka = KafkaSettings(client_overrides={"message.timeout.ms": "300"})
    publisher = EventPublisher(producer_config(kafka, f"127.0.0.1:{free_port()}"), "events")
    publisher.send(["key"], [b"value"])
    with pytest.raises(PublishError, match="1 delivery failure"):
        publisher.flush()


def test_connecting_never_waits_for_the_broker() -> None:
    # The producer learns its topic in the background while a file is scanned: with no
    # broker listening, connect() still returns at once (the lookup waits up to 30 s).
    def looking_up() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name == "meterpipe-producer-metadata"}

    earlier = looking_up()  # an earlier test's lookup may still be waiting
    publisher = EventPublisher(producer_config(KafkaSettings(), f"127.0.0.1:{free_port()}"), "t")
    started = time.monotonic()
    publisher.connect()
    assert time.monotonic() - started < 5
    assert looking_up() - earlier  # this publisher's lookup goes on in the background
    publisher.reset()


def test_a_connected_publisher_sends_like_one_started_by_its_first_send(
    broker: EmbeddedBroker,
) -> None:
    tag = uuid.uuid4().hex[:8]
    kafka = KafkaSettings(topic=f"connected-{tag}", dlq_topic=f"connected-dlq-{tag}")
    ensure_topics(kafka, broker.bootstrap_servers)
    publisher = EventPublisher(producer_config(kafka, broker.bootstrap_servers), kafka.topic)
    publisher.connect()
    publisher.send(["a", "b"], [b"1", b"2"])
    publisher.flush()
    messages = read_topic(broker.bootstrap_servers, kafka.topic, 2)
    assert sorted((m.key(), m.value()) for m in messages) == [(b"a", b"1"), (b"b", b"2")]


def _bytes_on_the_wire(broker: EmbeddedBroker, compression: str, values: list[bytes]) -> int:
    """What a producer configured with `compression` sends to the broker for `values`.

    librdkafka's statistics count the bytes it transmitted; read once all are acknowledged.
    """
    tag = uuid.uuid4().hex[:8]
    kafka = KafkaSettings(
        topic=f"compressed-{tag}", dlq_topic=f"compressed-dlq-{tag}", compression_type=compression
    )
    ensure_topics(kafka, broker.bootstrap_servers)
    statistics: list[dict[str, int]] = []
    config = producer_config(kafka, broker.bootstrap_servers)
    assert config["compression.type"] == compression
    producer = Producer({
        **config, "statistics.interval.ms": 100,
        "stats_cb": lambda text: statistics.append(json.loads(text)),
    })  # fmt: skip
    for index, value in enumerate(values):
        producer.produce(kafka.topic, value, str(index))
    assert producer.flush(60) == 0

    def all_counted() -> bool:
        producer.poll(0.1)
        return bool(statistics) and statistics[-1]["txmsgs"] >= len(values)

    wait_for(all_counted, 60, f"statistics counting {len(values)} messages")
    messages = read_topic(broker.bootstrap_servers, kafka.topic, len(values))
    assert sorted(m.value() or b"" for m in messages) == sorted(values)
    return statistics[-1]["tx_bytes"]


def test_batches_are_compressed_by_the_configured_codec(broker: EmbeddedBroker) -> None:
    # Events repeat their account, unit, currency and description: lz4 shrinks them.
    values = [
        f'{{"account": "acct-{n % 40:04d}", "unit": "API_CALL", "currency": "USD",'
        f' "description": "metered usage", "quantity": "{n}.125"}}'.encode()
        for n in range(3_000)
    ]
    plain = _bytes_on_the_wire(broker, "none", values)
    compressed = _bytes_on_the_wire(broker, "lz4", values)
    assert plain > sum(map(len, values))
    assert compressed < plain / 2
