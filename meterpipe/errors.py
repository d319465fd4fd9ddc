"""The exceptions meterpipe raises, under one root so callers can catch them all.

    MeterpipeError
    ├── ConfigError        settings that cannot work together
    ├── SchemaError        the Avro contract cannot be loaded, encoded or registered
    ├── FileRejectedError  a whole upload refused: bad header, bad encoding, strict-mode errors
    ├── AuthorizationError Kafka's ACLs refuse this principal an operation it needs
    ├── BrokerError        the embedded broker could not start or stopped unexpectedly
    ├── PublishError       the broker did not acknowledge every event of an upload
    └── StoreError         the totals store failed or refused a write
        └── StaleBatchError  a batch lost its partitions before commit (fenced)

Invalid rows and events are never exceptions: they are values (`RowError`) routed to
reports and the dead-letter topic, so one bad row never stops a stream.
"""

from __future__ import annotations

__all__ = [
    "AuthorizationError",
    "BrokerError",
    "ConfigError",
    "FileRejectedError",
    "MeterpipeError",
    "PublishError",
    "SchemaError",
    "StaleBatchError",
    "StoreError",
]


class MeterpipeError(Exception):
    """Root of every error meterpipe raises on purpose."""


class ConfigError(MeterpipeError):
    """Settings are missing, malformed or contradict each other."""


class SchemaError(MeterpipeError):
    """The Avro schema cannot be loaded, encoded against or registered."""


class FileRejectedError(MeterpipeError):
    """An upload is refused as a whole; `reason` is a stable snake_case code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class AuthorizationError(MeterpipeError):
    """Kafka's ACLs refuse this principal an operation it needs (read, write, join)."""


class BrokerError(MeterpipeError):
    """The embedded broker could not be started or died."""


class PublishError(MeterpipeError):
    """Some events of an upload were not acknowledged by the broker."""


class StoreError(MeterpipeError):
    """The totals store failed or refused a write."""


class StaleBatchError(StoreError):
    """A batch's partitions moved to another consumer before it committed; it was discarded."""
