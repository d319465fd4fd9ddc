"""What librdkafka refuses, as meterpipe errors that say what to fix.

A setting refused when a client starts is a ConfigError naming the setting as the user
spelled it; an operation the broker's ACLs refuse is told apart from a passing fault,
because retrying it cannot help until someone grants the operation.
"""

from __future__ import annotations

from confluent_kafka import KafkaException, Producer

from meterpipe.errors import ConfigError
from meterpipe.kafka_config import ClientConfig

__all__ = ["config_error", "refused_by_acls"]

# No such librdkafka setting: a trial client given it last is refused before it starts.
PROBE_SETTING = "meterpipe.probe"


def config_error(role: str, config: ClientConfig, exc: Exception) -> ConfigError:
    """A ConfigError naming the setting librdkafka refused, spelled as `config` spells it.

    librdkafka names the setting it refused by its canonical name (`linger.ms` is refused as
    `queue.buffering.max.ms`); each setting is tried alone to name it as the user wrote it.
    Values are never shown: some are secrets.
    """
    for name, value in config.items():
        try:
            Producer({name: value, PROBE_SETTING: ""})
        except KafkaException as trial:
            if PROBE_SETTING not in str(trial):
                return ConfigError(f"librdkafka refused {name}: {trial.args[0].str()}")
    return ConfigError(f"librdkafka refused the {role} settings: {exc}")


def refused_by_acls(error: str) -> bool:
    """librdkafka's text for TOPIC_, GROUP_ or CLUSTER_AUTHORIZATION_FAILED."""
    return "authorization failed" in error.lower()
