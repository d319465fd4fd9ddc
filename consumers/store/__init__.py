"""Where totals, dedupe state, offsets and upload records are kept."""

from __future__ import annotations

from consumers.store.base import TotalsFolder, TotalsStore
from consumers.store.records import BatchOutcome, BatchStats, StoredOffset, TotalRow
from consumers.store.sqlite import SqliteStore
from meterpipe.errors import ConfigError
from meterpipe.settings import StoreSettings
from schemas.uploads import UploadRecord, UploadStatus

__all__ = [
    "BatchOutcome",
    "BatchStats",
    "SqliteStore",
    "StoredOffset",
    "TotalRow",
    "TotalsFolder",
    "TotalsStore",
    "UploadRecord",
    "UploadStatus",
    "open_store",
]


POSTGRES_SCHEMES = ("postgresql", "postgres")


def open_store(settings: StoreSettings) -> TotalsStore:
    """The store the settings name: the SQLite file in the data dir unless a URL is given."""
    if settings.store_url is None:
        return SqliteStore.open(settings.sqlite_path, settings.dedupe_retention_days)
    scheme = settings.store_url.partition("://")[0].lower()
    if scheme not in POSTGRES_SCHEMES:
        # Only the scheme is shown: the rest of the URL may carry a password.
        raise ConfigError(
            f"store URL scheme {scheme!r} is not supported;"
            " use postgresql:// or unset it for SQLite"
        )
    # Imported here: psycopg is a sizeable import that SQLite users never need.
    from consumers.store.postgres import PostgresStore

    return PostgresStore.open(
        settings.store_url, settings.dedupe_retention_days, settings.idle_in_transaction_timeout_s
    )
