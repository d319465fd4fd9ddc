"""Topic creation and log identity.

Topics are created with every config we rely on set explicitly, because some brokers
(Tansu) only report back configs given at creation. A log's identity is its cluster id
plus topic id: when a broker loses its memory and the topic is re-created, the identity
changes and stored offsets that point into the old log must not be trusted.
"""

from __future__ import annotations

from confluent_kafka import KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from meterpipe.errors import BrokerError
from meterpipe.kafka_config import admin_config, dead_letter_max_bytes, with_logger
from meterpipe.settings import KafkaSettings

__all__ = ["ensure_topics", "log_identity"]

ADMIN_TIMEOUT_S = 30.0


def ensure_topics(kafka: KafkaSettings, bootstrap: str) -> None:
    """Create the event and dead-letter topics if they do not exist yet."""
    admin = AdminClient(with_logger(admin_config(kafka, bootstrap)))
    existing = admin.list_topics(timeout=ADMIN_TIMEOUT_S).topics
    configs = {
        "retention.ms": str(kafka.topic_retention_ms),
        "cleanup.policy": "delete",
        "min.insync.replicas": str(kafka.min_insync_replicas),
    }
    # The broker enforces the size limit too; the dead-letter topic takes a message of
    # that size plus the headers saying why it was refused.
    missing = [
        NewTopic(name, kafka.partitions, kafka.replication_factor, config=topic_configs)
        for name, topic_configs in (
            (kafka.topic, {**configs, "max.message.bytes": str(kafka.max_message_bytes)}),
            (kafka.dlq_topic, {**configs, "max.message.bytes": str(dead_letter_max_bytes(kafka))}),
        )
        if name not in existing
    ]
    if not missing:
        return
    for name, future in admin.create_topics(missing, operation_timeout=ADMIN_TIMEOUT_S).items():
        try:
            future.result(timeout=ADMIN_TIMEOUT_S)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise BrokerError(f"cannot create topic {name}: {exc}") from exc


def log_identity(kafka: KafkaSettings, bootstrap: str, topic: str) -> str:
    """`<cluster id>/<topic id>`: changes whenever the topic's log is a different one."""
    admin = AdminClient(with_logger(admin_config(kafka, bootstrap)))
    try:
        cluster = admin.describe_cluster(request_timeout=ADMIN_TIMEOUT_S).result(
            timeout=ADMIN_TIMEOUT_S
        )
        futures = admin.describe_topics(TopicCollection([topic]), request_timeout=ADMIN_TIMEOUT_S)
        description = futures[topic].result(timeout=ADMIN_TIMEOUT_S)
    except KafkaException as exc:
        raise BrokerError(f"cannot describe topic {topic}: {exc}") from exc
    return f"{cluster.cluster_id}/{description.topic_id}"
