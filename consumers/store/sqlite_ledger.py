"""The SQLite store file without the consumer's batch path: opening it, and the records and
reads every command shares (uploads, periods, keys, offsets, stats, totals).

Commands that only read or keep records (`meterpipe uploads`, `totals`, `periods`) open
this, which needs nothing but sqlite3; the batch path (`SqliteStore`) needs polars and
numpy. WAL mode lets them read while consumers write. A batch's totals wait in
`total_deltas` as Arrow blobs until a consumer folds them into `totals` (whenever its topic
is idle); reads add the pending ones.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from consumers.store.migrations import SQLITE_MIGRATIONS, apply_migrations
from consumers.store.queries import UploadQueries, totals_filter
from consumers.store.stats import STATS_TABLES, TableStats
from meterpipe.errors import StoreError

__all__ = ["PAGE_BYTES", "SqliteLedger", "open_connection", "write_transaction"]

BUSY_TIMEOUT_S = 60.0
# Page cache per connection: the hot pages are the totals a fold updates; batches only append.
CACHE_KIB = 64 * 1024
# Page size of a new store file (an existing file keeps its own). A batch writes megabytes
# of blobs and a fold rewrites most of `totals`: SQLite's default 4 KiB pages made a
# replayed 500k-event run's batches 12% and its fold 13% slower than 64 KiB pages.
PAGE_BYTES = 64 * 1024
# New store files keep pointer maps (incremental auto-vacuum; the file never shrinks by
# itself, as without): reading a row deep inside a seen block then finds the blob's next
# page without reading the one before, which makes confirming dedupe candidates faster.
AUTO_VACUUM = "INCREMENTAL"


def open_connection(path: Path) -> sqlite3.Connection:
    """A connection to the store file at `path`, created and migrated if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            return _connect_once(path)
        except sqlite3.OperationalError as exc:
            # Switching a new file to WAL needs it to itself and reports "locked" at
            # once, without waiting: several processes starting together retry here.
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise StoreError(f"cannot open store {path}: {exc}") from exc
            time.sleep(0.05)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {path}: {exc}") from exc


def _connect_once(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        # Both take effect only before the file's first write: existing files keep theirs.
        connection.execute(f"PRAGMA page_size={PAGE_BYTES}")
        connection.execute(f"PRAGMA auto_vacuum={AUTO_VACUUM}")
        connection.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL survives any process crash; a power cut may lose the last batches,
        # but their offsets are lost with them, so they are simply consumed again.
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        with write_transaction(connection) as db:
            apply_migrations(db, SQLITE_MIGRATIONS, "?")
    except sqlite3.Error:
        connection.close()
        raise
    return connection


@contextmanager
def write_transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One `BEGIN IMMEDIATE` transaction: the write lock from its first statement."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class SqliteLedger(UploadQueries[sqlite3.Connection]):
    """Uploads, periods, keys, offsets, stats and totals as read, in one SQLite file."""

    stats_tables = (*STATS_TABLES, "total_deltas")

    @classmethod
    def open(cls, path: Path) -> SqliteLedger:
        """Open (creating and migrating if needed) the store file at `path`."""
        return cls(open_connection(path))

    def total_rows(
        self, account: str | None, unit: str | None, period: str | None
    ) -> Sequence[tuple[Any, ...]]:
        """Raw per-day total rows matching the filters, pending deltas included."""
        where, params = totals_filter(account, unit, period)
        # One read transaction: a fold moving deltas into totals is seen whole or not at all.
        with self._snapshot() as db:
            folded = db.execute(
                "SELECT account_id, pricing_unit, custom_unit, events,"
                " quantity_hi, quantity_lo, billable_hi, billable_lo"
                f" FROM totals{where} ORDER BY account_id, pricing_unit, custom_unit",
                params,
            ).fetchall()
            if not _has_pending_deltas(db):
                return folded
            # Imported here: pending deltas are Arrow blobs, read with polars, which only a
            # read that finds deltas waiting for a fold pays for.
            from consumers.store.sqlite_deltas import pending_total_rows

            return [*folded, *pending_total_rows(db, account, unit, period)]

    def known_periods(self) -> list[str]:
        """Periods with usage (folded or pending) or with a state set, oldest first."""
        with self._snapshot() as db:
            known = set(super().known_periods())
            if _has_pending_deltas(db):
                # Imported here for the reason total_rows gives.
                from consumers.store.sqlite_deltas import pending_periods

                known |= pending_periods(db)
        return sorted(known)

    def _table_stats(self, backend: str, table: str) -> TableStats:
        """Dedupe entries live in seen_events rows and in blocks: `seen_events` counts both."""
        stats = super()._table_stats(backend, table)
        if table != "seen_events":
            return stats
        blocks = super()._table_stats(backend, "seen_blocks")
        (in_blocks,) = self._db.execute(
            "SELECT total(length(hashes) / 8) FROM seen_blocks WHERE events IS NOT NULL"
        ).fetchone()
        return TableStats(
            rows=stats.rows + int(in_blocks), bytes=(stats.bytes or 0) + (blocks.bytes or 0)
        )

    def _oldest_seen_at(self) -> int | None:
        (oldest,) = self._db.execute(
            "SELECT min(seen_at) FROM (SELECT seen_at FROM seen_events UNION ALL"
            " SELECT seen_at FROM seen_blocks WHERE events IS NOT NULL)"
        ).fetchone()
        return int(oldest) if oldest is not None else None

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every statement inside sees the same committed state."""
        self._db.execute("BEGIN")
        try:
            yield self._db
        finally:
            self._db.execute("COMMIT")


def _has_pending_deltas(db: sqlite3.Connection) -> bool:
    """Whether any batch's totals still wait to be folded into `totals`."""
    return bool(db.execute("SELECT EXISTS (SELECT 1 FROM total_deltas)").fetchone()[0])
