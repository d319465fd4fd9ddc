"""The first contact with the cluster, so a wrong security setting is a clear error at once.

Without it, librdkafka retries a refused SASL handshake or a failed TLS connection
forever and the first admin call times out with "Broker transport failure". Here an
authentication or TLS failure becomes a ConfigError naming the protocol, mechanism and
user (never the password), and a cluster that cannot be reached a BrokerError.
"""

from __future__ import annotations

import time

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from meterpipe.errors import BrokerError, ConfigError
from meterpipe.kafka_config import admin_config, with_logger
from meterpipe.settings import KafkaSettings
from meterpipe.tls_probe import certificate_problem

__all__ = ["check_connection", "describe_security"]

PROBE_S = 1.0
REFUSED = frozenset({
    KafkaError._AUTHENTICATION,
    KafkaError._SSL,
    KafkaError.SASL_AUTHENTICATION_FAILED,
    KafkaError.UNSUPPORTED_SASL_MECHANISM,
    KafkaError.ILLEGAL_SASL_STATE,
})  # fmt: skip


def describe_security(kafka: KafkaSettings) -> str:
    """The security settings in words, for error messages: never the secrets."""
    parts = [f"security.protocol={kafka.security_protocol}"]
    if kafka.security_protocol.startswith("SASL"):
        parts += [f"sasl.mechanism={kafka.sasl_mechanism}", f"sasl.username={kafka.sasl_username}"]
    return ", ".join(parts)


def check_connection(kafka: KafkaSettings, bootstrap: str) -> None:
    """Return once the cluster answers; ConfigError if it refuses our credentials or TLS."""
    errors: list[KafkaError] = []
    config = with_logger(admin_config(kafka, bootstrap))
    config["error_cb"] = errors.append
    admin = AdminClient(config)
    deadline = time.monotonic() + kafka.connect_timeout_s
    while True:
        try:
            admin.list_topics(timeout=PROBE_S)
            return
        except KafkaException as exc:
            admin.poll(0)  # serves error_cb
            refused = [error for error in errors if error.code() in REFUSED]
            if refused:
                raise ConfigError(
                    f"Kafka at {bootstrap} refused the connection ({describe_security(kafka)}):"
                    f" {refused[-1].str()}{_certificate_cause(kafka, bootstrap, refused[-1])}"
                ) from exc
            if time.monotonic() >= deadline:
                last = errors[-1].str() if errors else str(exc.args[0].str())
                raise BrokerError(
                    f"cannot reach Kafka at {bootstrap} within {kafka.connect_timeout_s:.0f} s"
                    f" ({describe_security(kafka)}): {last}"
                ) from exc


def _certificate_cause(kafka: KafkaSettings, bootstrap: str, error: KafkaError) -> str:
    """For a certificate librdkafka would not verify: why, found by a handshake of our own."""
    if error.code() != KafkaError._SSL or "certificate verify failed" not in error.str():
        return ""
    problem = certificate_problem(bootstrap, kafka.ssl_ca_location)
    return f"; the broker's certificate: {problem}" if problem else ""
