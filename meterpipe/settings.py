"""Configuration for every component, from `METERPIPE_*` env vars and an optional TOML file.

One settings class per component keeps each piece's knobs together; all read the same
flat namespace (env var `METERPIPE_<FIELD>` or key `<field>` in the TOML file named by
`METERPIPE_CONFIG`), and explicit values (CLI options) win over both
(`meterpipe.config_sources`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from meterpipe.config_sources import CONFIG_ENV_VAR, ENV_PREFIX
from meterpipe.format_names import FormatName
from meterpipe.store_location import DEFAULT_DATA_DIR, SQLITE_FILE_NAME

__all__ = [
    "ConsumerSettings",
    "FormatName",
    "HttpSettings",
    "KafkaSettings",
    "MetricsSettings",
    "PeriodSettings",
    "RuntimeSettings",
    "Settings",
    "StoreSettings",
    "UploadSettings",
    "WatchSettings",
    "load_settings",
]

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
Compression = Literal["none", "gzip", "snappy", "lz4", "zstd"]


class _ComponentSettings(BaseSettings):
    """Shared source order: explicit values, env vars, TOML file, defaults."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Add the optional TOML file below env vars."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = os.environ.get(CONFIG_ENV_VAR)
        if toml_path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(toml_path)))
        return tuple(sources)


class KafkaSettings(_ComponentSettings):
    """Where the events go and how the clients talk to the cluster."""

    bootstrap_servers: str | None = Field(
        default=None, description="Kafka bootstrap servers; unset starts the embedded broker."
    )
    topic: str = Field(default="meterpipe.usage", description="The events topic.")
    dlq_topic: str = Field(
        default="meterpipe.usage.dlq",
        description="The dead-letter topic: undecodable, invalid and too large messages, with why.",
    )
    partitions: int = Field(
        default=6,
        ge=1,
        description="Partitions of the topics meterpipe creates: the most consumers that can"
        " work at once.",
    )
    replication_factor: int = Field(
        default=1, ge=1, description="Replicas of each partition of the topics meterpipe creates."
    )
    min_insync_replicas: int = Field(
        default=1,
        ge=1,
        description="min.insync.replicas of the topics meterpipe creates: with acks=all a write"
        " succeeds only once this many replicas have it (production: 2 with 3 replicas).",
    )
    topic_retention_ms: int = Field(
        default=7 * 24 * 3600 * 1000,
        ge=-1,
        description="retention.ms of the topics meterpipe creates (-1: forever).",
    )
    consumer_group: str = Field(
        default="meterpipe", description="The consumer group every consumer of one pipeline joins."
    )
    registry_url: str | None = Field(
        default=None, description="Confluent Schema Registry URL; unset uses single-object Avro."
    )
    security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT",
        description="security.protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.",
    )
    sasl_mechanism: str | None = Field(
        default=None, description="sasl.mechanism, e.g. SCRAM-SHA-512 or PLAIN."
    )
    sasl_username: str | None = Field(default=None, description="sasl.username.")
    sasl_password: SecretStr | None = Field(
        default=None, description="sasl.password (a secret: never printed)."
    )
    ssl_ca_location: str | None = Field(
        default=None,
        description="ssl.ca.location: the CA certificates that sign the brokers' certificates.",
    )
    ssl_certificate_location: str | None = Field(
        default=None,
        description="ssl.certificate.location: the client certificate, for mutual TLS.",
    )
    ssl_key_location: str | None = Field(
        default=None, description="ssl.key.location: the key of the client certificate."
    )
    ssl_key_password: SecretStr | None = Field(
        default=None, description="ssl.key.password (a secret: never printed)."
    )
    connect_timeout_s: float = Field(
        default=30.0, gt=0, description="How long commands wait for the cluster to answer."
    )
    linger_ms: int = Field(
        default=20, description="linger.ms: how long a producer waits to fill a batch."
    )
    compression_type: Compression = Field(
        default="lz4",
        description="Producer batch compression: lz4 about halves the bytes the broker handles.",
    )
    batch_num_messages: int = Field(
        default=10_000, description="batch.num.messages: messages per producer batch at most."
    )
    message_timeout_ms: int = Field(
        default=120_000,
        description="message.timeout.ms: how long a message may wait for its acknowledgement.",
    )
    producer_buffer_kbytes: int = Field(
        # Half of Kafka's 32 MiB buffer.memory: 20 MB less at the publisher's peak, no slower
        # here (16 MiB in flight still fills 300 MB/s at a 50 ms round trip).
        default=16 * 1024,
        ge=1,
        description="Bytes of messages a producer may hold unacknowledged (Kafka's buffer.memory).",
    )
    max_message_bytes: int = Field(
        default=1_000_000,
        ge=1024,
        description="Largest message (key plus value) consumed; larger ones are dead-lettered"
        " as too_large.",
    )
    session_timeout_ms: int = Field(
        default=6_000,
        description="session.timeout.ms: how long a silent consumer keeps its partitions.",
    )
    heartbeat_interval_ms: int = Field(
        default=500, description="heartbeat.interval.ms of the consumers."
    )
    fetch_queue_backoff_ms: int = Field(
        default=10,
        description="fetch.queue.backoff.ms: how soon a consumer that emptied its queue"
        " fetches again.",
    )
    client_overrides: dict[str, str] = Field(
        default_factory=dict, description="Extra librdkafka settings, applied last."
    )

    @model_validator(mode="after")
    def _replicas_can_be_in_sync(self) -> KafkaSettings:
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError(
                f"min_insync_replicas ({self.min_insync_replicas}) is more than"
                f" replication_factor ({self.replication_factor}): no write could succeed"
            )
        return self


class StoreSettings(_ComponentSettings):
    """Where totals, dedupe state, offsets and upload records live."""

    data_dir: Path = Field(
        default=DEFAULT_DATA_DIR, description="Where the SQLite store and spooled uploads live."
    )
    store_url: str | None = Field(
        default=None, description="Store URL; unset uses the SQLite file in data_dir."
    )
    dedupe_retention_days: int = Field(
        default=35,
        ge=1,
        description="Days an eventId is remembered; sent again later, it counts again.",
    )
    idle_in_transaction_timeout_s: float = Field(
        default=60.0,
        ge=0,
        description="PostgreSQL ends a session idle this long inside a transaction"
        " (0: never), releasing the row locks of a consumer frozen mid-batch.",
    )

    @property
    def sqlite_path(self) -> Path:
        """The embedded SQLite store file."""
        return self.data_dir / SQLITE_FILE_NAME


class UploadSettings(_ComponentSettings):
    """How files are read, validated and published."""

    chunk_bytes: int = Field(
        default=3 * 1024 * 1024,
        ge=1024,
        # Publishing holds about twenty chunks' worth (three stages, polars' buffers), and a few
        # ms of every chunk are fixed: 1M rows peaked at 390-406 MB with 4 MiB chunks; with 3
        # MiB (and a 16 MiB producer buffer) at 359-366 MB and no slower; 2 MiB used 0.3 CPU-s more.
        description="Bytes of the file read, validated and sent at a time; memory scales with it.",
    )
    file_format: FormatName | None = Field(
        default=None, description="Force a file format; unset detects it from the header."
    )
    meters: Path | None = Field(
        default=None, description="TOML file naming the Solvimon meter value/property columns."
    )
    max_report_errors: int = Field(
        default=1000,
        ge=1,
        description="Row errors kept in the report of an upload (the count of bad rows is"
        " never capped).",
    )
    skip_invalid: bool = Field(
        default=False,
        description="Ingest the valid rows of a file with bad rows (default: strict, nothing"
        " ingested).",
    )


class ConsumerSettings(_ComponentSettings):
    """How events are consumed and committed."""

    batch_max_events: int = Field(
        default=100_000,
        ge=1,
        le=1_000_000,  # a bound on what one batch (and its transaction) may hold
        description="Events per batch at most: each batch is one store transaction.",
    )
    batch_wait_s: float = Field(
        default=0.5, gt=0, description="How long a consumer waits to fill a batch."
    )
    fold_every_batches: int = Field(
        default=20,
        ge=1,
        description="SQLite: fold pending totals into the totals table after this many"
        " batches (twice as many while a batch is waiting), and whenever the topic is idle.",
    )


class WatchSettings(_ComponentSettings):
    """The watched inbox."""

    inbox: Path = Field(
        default=Path("inbox"), description="The directory meterpipe up watches for files."
    )
    processing_dir: Path = Field(
        default=Path("processing"), description="Claimed files; relative paths are in the inbox."
    )
    done_dir: Path = Field(default=Path("done"), description="Files whose upload is Done.")
    error_dir: Path = Field(default=Path("error"), description="Files whose upload is in Error.")
    poll_interval_s: float = Field(default=0.5, gt=0, description="How often the inbox is scanned.")
    min_file_age_s: float = Field(
        default=2.0, ge=0, description="A file is taken once it has not changed for this long."
    )

    def lifecycle_dir(self, folder: Path) -> Path:
        """A lifecycle folder: absolute as given, or inside the inbox."""
        return folder if folder.is_absolute() else self.inbox / folder


class PeriodSettings(_ComponentSettings):
    """Billing periods (UTC calendar months) and late or early usage."""

    auto_close_periods: bool = Field(
        default=False, description="Close each period at its end plus the grace period."
    )
    period_grace_hours: float = Field(
        default=8.0, ge=0, description="Hours after a period ends before auto-close closes it."
    )
    future_skew_hours: float = Field(
        default=24.0,
        ge=0,
        description="An event dated further in the future than this is refused (event_in_future).",
    )


class MetricsSettings(_ComponentSettings):
    """The Prometheus endpoint of every long-running process."""

    metrics_host: str = Field(
        default="0.0.0.0", description="Address /metrics, /healthz and /readyz listen on."
    )
    metrics_port: int = Field(
        default=9108,
        ge=0,
        le=65535,
        description="Port of /metrics, /healthz and /readyz (0 picks a free one, logged as"
        " metricsPort).",
    )


class HttpSettings(_ComponentSettings):
    """The HTTP API and web console of `meterpipe up` and `meterpipe serve`."""

    http_host: str = Field(
        default="127.0.0.1",
        description="Address the API and console listen on; any but loopback needs an API key.",
    )
    http_port: int = Field(
        default=8080, ge=0, le=65535,
        description="Port of the HTTP API and console (0 picks a free one, logged as httpPort).",
    )  # fmt: skip
    max_upload_bytes: int = Field(
        default=2 * 1024**3, ge=1, description="Largest request body an upload may send."
    )


class RuntimeSettings(_ComponentSettings):
    """How long-running processes (`up`, `consume`) stop."""

    shutdown_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="After SIGTERM/SIGINT, work still running after this long is abandoned.",
    )


class Settings(BaseModel):
    """Every component's settings, resolved once per command."""

    model_config = {"frozen": True}

    kafka: KafkaSettings
    store: StoreSettings
    upload: UploadSettings
    consumer: ConsumerSettings
    watch: WatchSettings
    periods: PeriodSettings
    metrics: MetricsSettings
    http: HttpSettings
    runtime: RuntimeSettings


def load_settings(**overrides: Any) -> Settings:
    """Resolve all components; each override goes to the component that owns the field."""
    components: dict[str, Any] = {}
    for name, field in Settings.model_fields.items():
        cls = field.annotation
        if not (isinstance(cls, type) and issubclass(cls, _ComponentSettings)):
            raise TypeError(f"Settings.{name} is not a component settings class")
        own = {k: v for k, v in overrides.items() if k in cls.model_fields and v is not None}
        components[name] = cls(**own)
    unknown = set(overrides) - {f for c in components.values() for f in type(c).model_fields}
    if unknown:
        raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
    return Settings(**components)
