"""Dead letters the broker does not acknowledge: the batch is read again, the consumer lives.

The dead-letter producer is pointed at a port where no broker listens (with a short message
timeout), as when the broker died with letters in flight; then at the real broker again.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer
from prometheus_client import CollectorRegistry

from consumers.consumer import UsageConsumer
from consumers.store.sqlite import SqliteStore
from meterpipe.broker import EmbeddedBroker, free_port
from meterpipe.kafka_config import dead_letter_producer_config, producer_config
from meterpipe.publisher import EventPublisher
from meterpipe.settings import KafkaSettings, load_settings
from meterpipe.topics import ensure_topics
from tests.consumers.running import running_consumer
from tests.processes import wait_for
from tests.topics import read_topic

POISON = 3
FAILURE = "dead letters not acknowledged"


# One message per batch: the batch read after a failed one is in hand, and must be read
# again too (applying it would skip the failed batch's messages for good).
@pytest.mark.parametrize("batch_max_events", [None, 1])
def test_unacknowledged_dead_letters_keep_the_batch_until_they_are_sent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, batch_max_events: int | None
) -> None:
    caplog.set_level(logging.ERROR, logger="consumers.consumer")
    topic = f"usage-{uuid.uuid4().hex[:8]}"
    with EmbeddedBroker() as broker:
        bootstrap = broker.bootstrap_servers
        settings = load_settings(
            topic=topic, dlq_topic=f"{topic}-dlq", consumer_group=topic, data_dir=tmp_path,
            batch_max_events=batch_max_events,
        )  # fmt: skip
        ensure_topics(settings.kafka, bootstrap)
        producer = Producer(producer_config(settings.kafka, bootstrap))
        for n in range(POISON):
            producer.produce(topic, b"not avro %d" % n, b"key-%d" % n)
        assert producer.flush(30) == 0

        store_path = tmp_path / "store.sqlite3"
        lost = KafkaSettings(client_overrides={"message.timeout.ms": "300"})
        nowhere = dead_letter_producer_config(lost, f"127.0.0.1:{free_port()}")
        reader = SqliteStore.open(store_path)

        def failures() -> bool:
            return sum(FAILURE in r.getMessage() for r in caplog.records) >= 2

        def committed() -> bool:
            return sum(o.next_offset for o in reader.load_offsets(topic).values()) == POISON

        def lost_dead_letters(consumer: UsageConsumer) -> None:
            consumer._dead_letters = EventPublisher(nowhere, settings.kafka.dlq_topic)

        try:
            with running_consumer(
                settings, bootstrap, store_path, CollectorRegistry(), lost_dead_letters
            ) as consumer:
                wait_for(failures, 120, "the batch to fail twice")
                assert reader.load_offsets(topic) == {}  # nothing of the batch was committed
                working = dead_letter_producer_config(settings.kafka, bootstrap)
                consumer._dead_letters = EventPublisher(working, settings.kafka.dlq_topic)
                wait_for(committed, 120, "the batch to commit")
        finally:
            reader.close()
        # Sent once each: the failed attempts never reached a broker.
        letters = read_topic(bootstrap, settings.kafka.dlq_topic, POISON, settle_s=2.0)
        keys = sorted(letter.key() or b"" for letter in letters)
        assert keys == [b"key-%d" % n for n in range(POISON)]
