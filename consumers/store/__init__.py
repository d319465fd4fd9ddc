"""Where totals, dedupe state, offsets and upload records are kept."""

from __future__ import annotations

from consumers.store.records import (
    BatchOutcome,
    BatchStats,
    StoredOffset,
    TotalRow,
    UploadRecord,
    UploadStatus,
)
from consumers.store.sqlite import SqliteStore
from meterpipe.errors import ConfigError
from meterpipe.settings import StoreSettings

__all__ = [
    "BatchOutcome",
    "BatchStats",
    "SqliteStore",
    "StoredOffset",
    "TotalRow",
    "UploadRecord",
    "UploadStatus",
    "open_store",
]


def open_store(settings: StoreSettings) -> SqliteStore:
    """The store the settings name: the SQLite file in the data dir unless a URL is given."""
    if settings.store_url is not None:
        raise ConfigError(
            f"store URL {settings.store_url!r} is not supported yet; unset it to use SQLite"
        )
    return SqliteStore.open(settings.sqlite_path, settings.dedupe_retention_days)
