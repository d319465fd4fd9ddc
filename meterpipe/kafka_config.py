"""The one place where meterpipe settings become librdkafka configuration dicts.

Every client (producer, consumer, admin) gets the same connection and security keys;
each role then adds what it needs. Callers get a fresh dict each time and may change it.
"""

from __future__ import annotations

import logging
from typing import Any

from meterpipe.logs import KAFKA_LOGGER
from meterpipe.settings import KafkaSettings

__all__ = [
    "ClientConfig",
    "admin_config",
    "consumer_config",
    "dead_letter_max_bytes",
    "dead_letter_producer_config",
    "producer_config",
    "with_logger",
]

ClientConfig = dict[str, str | int | float | bool]
KAFKA_LOG = logging.getLogger(KAFKA_LOGGER)
# Room for a dead letter's headers on top of the largest message it may carry (each
# header text is capped, see consumers.dead_letters).
DEAD_LETTER_HEADROOM_BYTES = 64 * 1024


def with_logger(config: ClientConfig) -> dict[str, Any]:
    """librdkafka's own log lines through Python logging instead of raw stderr."""
    return {**config, "logger": KAFKA_LOG}


def _connection(kafka: KafkaSettings, bootstrap: str) -> ClientConfig:
    """Bootstrap and security keys shared by every client."""
    config: ClientConfig = {
        "bootstrap.servers": bootstrap,
        "security.protocol": kafka.security_protocol,
        # Topics are created by ensure_topics, with the configured partitions. A producer's
        # metadata request would otherwise create a missing one with the broker's default
        # count: after an embedded-broker restart, a producer of the lost broker did so
        # (4 partitions, not 3) before the topic was re-created, and totals came out wrong:
        # most likely its keys went to other partitions than the re-published events', and
        # copies sharing an eventId arrived out of row order.
        "allow.auto.create.topics": False,
    }
    optional: dict[str, str | None] = {
        "sasl.mechanism": kafka.sasl_mechanism,
        "sasl.username": kafka.sasl_username,
        "sasl.password": kafka.sasl_password.get_secret_value() if kafka.sasl_password else None,
        "ssl.ca.location": kafka.ssl_ca_location,
        "ssl.certificate.location": kafka.ssl_certificate_location,
        "ssl.key.location": kafka.ssl_key_location,
        "ssl.key.password": (
            kafka.ssl_key_password.get_secret_value() if kafka.ssl_key_password else None
        ),
    }
    config.update({key: value for key, value in optional.items() if value is not None})
    return config


def _with_overrides(kafka: KafkaSettings, config: ClientConfig) -> ClientConfig:
    """Apply the user's raw librdkafka overrides last, so they always win."""
    config.update(kafka.client_overrides)
    return config


def admin_config(kafka: KafkaSettings, bootstrap: str) -> ClientConfig:
    """Config for the AdminClient that creates topics and reads their identity."""
    return _with_overrides(kafka, _connection(kafka, bootstrap))


def producer_config(kafka: KafkaSettings, bootstrap: str) -> ClientConfig:
    """Idempotent, batching producer: ordered, no duplicates from retries."""
    config = _connection(kafka, bootstrap)
    config.update(
        {
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": kafka.linger_ms,
            "compression.type": kafka.compression_type,
            "batch.num.messages": kafka.batch_num_messages,
            "message.timeout.ms": kafka.message_timeout_ms,
            "message.max.bytes": kafka.max_message_bytes,
            # Bounded in bytes, not messages: what a fast reader queues ahead of the broker
            # is what varies most in a publisher's memory.
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": kafka.producer_buffer_kbytes,
            # Only failed deliveries call back: success is checked once, at flush.
            "delivery.report.only.error": True,
        }
    )
    return _with_overrides(kafka, config)


def dead_letter_max_bytes(kafka: KafkaSettings) -> int:
    """The largest dead letter: a message of the size limit plus its headers."""
    return kafka.max_message_bytes + DEAD_LETTER_HEADROOM_BYTES


def dead_letter_producer_config(kafka: KafkaSettings, bootstrap: str) -> ClientConfig:
    """The producer config, allowing a message of the size limit with dead-letter headers."""
    config = producer_config(kafka, bootstrap)
    config["message.max.bytes"] = dead_letter_max_bytes(kafka)
    return _with_overrides(kafka, config)


def consumer_config(kafka: KafkaSettings, bootstrap: str, group: str) -> ClientConfig:
    """Group member whose offsets live in the store; Kafka commits are informational."""
    config = _connection(kafka, bootstrap)
    config.update(
        {
            "group.id": group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "session.timeout.ms": kafka.session_timeout_ms,
            "heartbeat.interval.ms": kafka.heartbeat_interval_ms,
            # librdkafka waits this long after draining its prefetch queue; its 1 s default
            # stalls a fast consumer every ~100k messages (measured on the embedded broker).
            "fetch.queue.backoff.ms": kafka.fetch_queue_backoff_ms,
            "statistics.interval.ms": 5_000,
            "enable.partition.eof": False,
        }
    )
    return _with_overrides(kafka, config)
