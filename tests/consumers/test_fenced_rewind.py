"""A fenced batch rewinds to the stored offset only if that offset is of the current log.

After a broker that lost its data, the store can still hold an earlier log's offsets (they
are kept, and compared, so that another member's commit fences ours). Seeking to one of
them would skip that many messages of the new log: events never counted.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer
from prometheus_client import CollectorRegistry

from consumers.store.sqlite import SqliteStore
from meterpipe.broker import EmbeddedBroker
from meterpipe.kafka_config import producer_config
from meterpipe.settings import load_settings
from meterpipe.topics import ensure_topics, log_identity
from tests.consumers.running import running_consumer
from tests.processes import wait_for

MESSAGES = 12
EARLIER_LOG = "a-log-the-broker-lost"


def _store_offset(path: Path, topic: str, log_id: str, next_offset: int) -> None:
    """Write partition 0's stored position, as another member's commit would."""
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO offsets VALUES (?, 0, ?, ?) ON CONFLICT (topic, partition)"
            " DO UPDATE SET log_id = excluded.log_id, next_offset = excluded.next_offset",
            (topic, log_id, next_offset),
        )


# With 4 messages per batch, the batch after the fenced one is in hand: it is read again
# after the rewind, not applied (that would count its messages twice).
@pytest.mark.parametrize("batch_max_events", [None, 4])
def test_a_fenced_batch_never_resumes_from_an_earlier_logs_offset(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, batch_max_events: int | None
) -> None:
    caplog.set_level(logging.INFO, logger="consumers.consumer")
    topic = f"usage-{uuid.uuid4().hex[:8]}"
    store_path = tmp_path / "store.sqlite3"
    SqliteStore.open(store_path).close()
    _store_offset(store_path, topic, EARLIER_LOG, 7)
    with EmbeddedBroker() as broker:
        bootstrap = broker.bootstrap_servers
        settings = load_settings(
            topic=topic, dlq_topic=f"{topic}-dlq", consumer_group=topic, data_dir=tmp_path,
            batch_max_events=batch_max_events,
        )  # fmt: skip
        ensure_topics(settings.kafka, bootstrap)
        registry = CollectorRegistry()
        reader = SqliteStore.open(store_path)
        try:
            with running_consumer(settings, bootstrap, store_path, registry):
                assigned = "assigned partition 0 from offset -2"  # the earlier log's: no
                wait_for(lambda: any(assigned in r.getMessage() for r in caplog.records), 120,
                         "partition 0 assigned from its start")  # fmt: skip
                # Another member moves the stored position on: the consumer's batch is fenced.
                _store_offset(store_path, topic, EARLIER_LOG, 5)
                producer = Producer(producer_config(settings.kafka, bootstrap))
                for n in range(MESSAGES):  # not Avro: each is dead-lettered, and still counted
                    producer.produce(topic, b"not avro %d" % n, b"key-%d" % n, partition=0)
                assert producer.flush(30) == 0
                current = log_identity(settings.kafka, bootstrap, topic)

                def committed() -> bool:
                    position = reader.load_offsets(topic).get(0)
                    return position is not None and position.log_id == current

                wait_for(committed, 120, "partition 0 committed on the current log")
        finally:
            reader.close()
    assert registry.get_sample_value("meterpipe_batches_fenced_total") == 1
    # Every message of the new log was consumed and committed: none skipped by the rewind.
    assert registry.get_sample_value("meterpipe_events_consumed_total") == MESSAGES
