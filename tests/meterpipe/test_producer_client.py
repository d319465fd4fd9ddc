"""confluent-kafka's Producer behind EventPublisher: where keys land, what it refuses, where
its log lines go, and how a stop ends a wait for room."""

from __future__ import annotations

import gc
import logging
import threading
import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from meterpipe.broker import EmbeddedBroker, free_port
from meterpipe.errors import ConfigError, PublishError
from meterpipe.kafka_config import ClientConfig, admin_config, producer_config
from meterpipe.logs import KAFKA_LOGGER
from meterpipe.publisher import EventPublisher, PublishCancelled
from meterpipe.settings import KafkaSettings
from meterpipe.topics import ensure_topics
from tests.processes import wait_for
from tests.topics import read_topic


def _fresh_topic(broker: EmbeddedBroker, name: str) -> KafkaSettings:
    tag = uuid.uuid4().hex[:8]
    kafka = KafkaSettings(topic=f"{name}-{tag}", dlq_topic=f"{name}-dlq-{tag}", partitions=6)
    ensure_topics(kafka, broker.bootstrap_servers)
    return kafka


def test_keys_land_on_the_partitions_confluent_kafka_chooses(broker: EmbeddedBroker) -> None:
    keys = [uuid.uuid4().hex for _ in range(300)]
    direct, confluent = _fresh_topic(broker, "direct"), _fresh_topic(broker, "confluent")
    publisher = EventPublisher(producer_config(direct, broker.bootstrap_servers), direct.topic)
    publisher.send(keys, [key.encode() for key in keys])
    publisher.flush()
    producer = Producer(producer_config(confluent, broker.bootstrap_servers))
    for key in keys:
        producer.produce(confluent.topic, key.encode(), key)
    assert producer.flush(60) == 0

    def placement(topic: str) -> dict[bytes | None, int | None]:
        messages = read_topic(broker.bootstrap_servers, topic, len(keys))
        assert sorted(m.value() or b"" for m in messages) == sorted(k.encode() for k in keys)
        return {m.key(): m.partition() for m in messages}

    placed = placement(direct.topic)
    assert len(set(placed.values())) > 1  # the keys were spread, not all sent to one partition
    assert placed == placement(confluent.topic)


def test_a_producer_never_creates_its_topic(broker: EmbeddedBroker) -> None:
    # Tansu, like Kafka by default, creates a topic a client asks about, with its own
    # partition count: only ensure_topics may create one.
    kafka = KafkaSettings(
        topic=f"missing-{uuid.uuid4().hex[:8]}",
        client_overrides={"topic.metadata.propagation.max.ms": "1000"},  # fail soon, not in 30 s
    )
    publisher = EventPublisher(producer_config(kafka, broker.bootstrap_servers), kafka.topic)
    publisher.send(["key"], [b"value"])
    with pytest.raises(PublishError, match="Unknown topic"):
        publisher.flush()
    admin = AdminClient(admin_config(kafka, broker.bootstrap_servers))
    assert kafka.topic not in admin.list_topics(timeout=30).topics


def test_a_setting_librdkafka_refuses_is_a_config_error_naming_it() -> None:
    # librdkafka refuses it under its canonical name, queue.buffering.max.ms.
    kafka = KafkaSettings(client_overrides={"linger.ms": "soon"})
    publisher = EventPublisher(producer_config(kafka, f"127.0.0.1:{free_port()}"), "events")
    with pytest.raises(ConfigError, match=r"linger\.ms"):
        publisher.send(["key"], [b"value"])


def test_a_message_librdkafka_refuses_is_a_publish_error_and_the_rest_stay_queued(
    broker: EmbeddedBroker,
) -> None:
    kafka = _fresh_topic(broker, "refused")
    kafka = kafka.model_copy(update={"client_overrides": {"message.max.bytes": "2000"}})
    publisher = EventPublisher(producer_config(kafka, broker.bootstrap_servers), kafka.topic)
    with pytest.raises(PublishError, match="too large"):
        publisher.send(["small", "large", "after"], [b"s", bytes(5_000), b"a"])
    publisher.flush()  # what came before the refused message was queued, and is delivered
    delivered = read_topic(broker.bootstrap_servers, kafka.topic, 1, settle_s=2.0)
    assert [m.value() for m in delivered] == [b"s"]


def test_librdkafka_log_lines_go_to_the_librdkafka_logger(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()  # nothing listens: librdkafka logs its failed connections
    kafka = KafkaSettings(client_overrides={"message.timeout.ms": "2000"})
    publisher = EventPublisher(producer_config(kafka, f"127.0.0.1:{port}"), "events")
    with caplog.at_level(logging.INFO, logger=KAFKA_LOGGER):
        publisher.send(["key"], [b"value"])
        with pytest.raises(PublishError, match="1 delivery failure"):
            publisher.flush()
    lines = [r.getMessage() for r in caplog.records if r.name == KAFKA_LOGGER]
    assert any(f"127.0.0.1:{port}" in line and "[rdkafka#producer-" in line for line in lines)


def test_a_stop_while_the_queue_is_full_ends_sending() -> None:
    # No broker and a 16 KB queue: the queue fills, and sending waits for room until stopped.
    kafka = KafkaSettings(producer_buffer_kbytes=16)
    stop = threading.Event()
    publisher = EventPublisher(producer_config(kafka, f"127.0.0.1:{free_port()}"), "t", stop)
    values = [bytes(200) for _ in range(1_000)]
    threading.Timer(0.5, stop.set).start()
    with pytest.raises(PublishCancelled):
        publisher.send([str(n) for n in range(len(values))], values)
    publisher.reset()


def _serving_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "meterpipe-producer-reports"]


def test_delivery_reports_are_served_until_the_publisher_closes_or_is_dropped() -> None:
    # Earlier tests' dropped publishers may still be ending their threads: watch only these two.
    before = set(_serving_threads())
    config: ClientConfig = {"bootstrap.servers": f"127.0.0.1:{free_port()}"}
    closed, dropped = EventPublisher(config, "closed"), EventPublisher(config, "dropped")
    closed.connect()
    dropped.connect()
    ours = set(_serving_threads()) - before
    assert len(ours) == 2

    def alive() -> int:
        return sum(thread.is_alive() for thread in ours)

    closed.reset()  # nothing to flush: the broker is not there
    assert alive() == 1
    del dropped
    gc.collect()
    wait_for(lambda: alive() == 0 or None, 30, "the dropped one's thread")
