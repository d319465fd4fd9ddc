"""Where totals, dedupe state, offsets and upload records are kept."""

from __future__ import annotations

from typing import TYPE_CHECKING

from consumers.store.base import StoreLedger, TotalsFolder, TotalsStore
from consumers.store.records import BatchOutcome, BatchStats, StoredOffset, TotalRow
from consumers.store.sqlite_ledger import SqliteLedger
from meterpipe.errors import ConfigError
from meterpipe.store_location import StoreLocation
from schemas.uploads import UploadRecord, UploadStatus

if TYPE_CHECKING:  # annotations only: open_ledger serves commands that load no pydantic
    from meterpipe.settings import StoreSettings

__all__ = [
    "BatchOutcome",
    "BatchStats",
    "StoreLedger",
    "StoredOffset",
    "TotalRow",
    "TotalsFolder",
    "TotalsStore",
    "UploadRecord",
    "UploadStatus",
    "open_ledger",
    "open_store",
]


POSTGRES_SCHEMES = ("postgresql", "postgres")


def open_store(settings: StoreSettings) -> TotalsStore:
    """The store the settings name: the SQLite file in the data dir unless a URL is given."""
    if settings.store_url is None:
        # Imported here: the batch path needs polars and numpy, which commands that only
        # read or keep records (open_ledger) never load.
        from consumers.store.sqlite import SqliteStore

        return SqliteStore.open(settings.sqlite_path, settings.dedupe_retention_days)
    url = _postgres_url(settings.store_url)
    # Imported here: psycopg is a sizeable import that SQLite users never need (and the
    # batch path needs polars, as above).
    from consumers.store.postgres import PostgresStore

    return PostgresStore.open(
        url, settings.dedupe_retention_days, settings.idle_in_transaction_timeout_s
    )


def open_ledger(location: StoreLocation | StoreSettings) -> StoreLedger:
    """The store named, without the consumer's batch path: for commands that only read or
    keep records, which then load no dataframe library."""
    if location.store_url is None:
        return SqliteLedger.open(location.sqlite_path)
    url = _postgres_url(location.store_url)
    # Imported here: psycopg is a sizeable import that SQLite users never need.
    from consumers.store.postgres_ledger import PostgresLedger

    return PostgresLedger.open(url)


def _postgres_url(url: str) -> str:
    """`url` if it names PostgreSQL; a ConfigError otherwise."""
    scheme = url.partition("://")[0].lower()
    if scheme not in POSTGRES_SCHEMES:
        # Only the scheme is shown: the rest of the URL may carry a password.
        raise ConfigError(
            f"store URL scheme {scheme!r} is not supported;"
            " use postgresql:// or unset it for SQLite"
        )
    return url
