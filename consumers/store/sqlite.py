"""The embedded store: one SQLite file holding totals, dedupe state, offsets and uploads.

A consumed batch is applied in one `BEGIN IMMEDIATE` transaction: new eventIds, totals,
upload progress and the next offsets commit together or not at all, which is what makes
totals exactly-once across crashes. WAL mode lets the CLI read while consumers write.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl

from consumers.aggregate import HALF, aggregate
from consumers.dedupe import Classified, classify
from consumers.event_hash import event_id_hashes
from consumers.store.frames import (
    OUTCOMES,
    PROVENANCE,
    PROVENANCE_SCHEMA,
    progress_by_upload,
    provenance_of,
)
from consumers.store.migrations import SQLITE_MIGRATIONS, apply_migrations
from consumers.store.queries import UploadQueries, totals_filter
from consumers.store.records import BatchOutcome, BatchStats
from meterpipe.errors import StaleBatchError, StoreError

__all__ = ["SqliteStore"]

BUSY_TIMEOUT_S = 60.0
CACHE_KIB = 256 * 1024  # page cache per connection: keeps the dedupe index's hot pages


class SqliteStore(UploadQueries[sqlite3.Connection]):
    """Totals, dedupe state, offsets and upload records in one SQLite file."""

    def __init__(self, connection: sqlite3.Connection, retention_days: int) -> None:
        super().__init__(connection)
        self._retention_s = retention_days * 86_400

    @classmethod
    def open(cls, path: Path, retention_days: int = 35) -> SqliteStore:
        """Open (creating and migrating if needed) the store file at `path`."""
        path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                return cls._open_once(path, retention_days)
            except sqlite3.OperationalError as exc:
                # Switching a new file to WAL needs it to itself and reports "locked" at
                # once, without waiting: several processes starting together retry here.
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise StoreError(f"cannot open store {path}: {exc}") from exc
                time.sleep(0.05)
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open store {path}: {exc}") from exc

    @classmethod
    def _open_once(cls, path: Path, retention_days: int) -> SqliteStore:
        connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL survives any process crash; a power cut may lose the last batches,
            # but their offsets are lost with them, so they are simply consumed again.
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            store = cls(connection, retention_days)
            store._migrate()
        except sqlite3.Error:
            connection.close()
            raise
        return store

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _migrate(self) -> None:
        with self._transaction() as db:
            apply_migrations(db, SQLITE_MIGRATIONS, "?")

    # ---- consumer side -------------------------------------------------------------

    def apply_batch(self, outcome: BatchOutcome) -> BatchStats:
        """Commit one batch's effects atomically; raise StaleBatchError if it was fenced."""
        try:
            with self._transaction() as db:
                self._check_offsets(db, outcome)
                known, settled = self._lookup(db, outcome)
                classified = classify(outcome.events, outcome.dead_lettered, known, settled)
                self._record_outcomes(db, classified)
                self._add_totals(db, aggregate(classified.accepted))
                finished = self._count_progress(db, classified)
                self._write_offsets(db, outcome)
        except sqlite3.Error as exc:
            raise StoreError(f"batch not committed: {exc}") from exc
        return BatchStats(
            accepted=classified.accepted.height,
            duplicates=classified.duplicates.height,
            redelivered=classified.redelivered,
            dead_lettered=classified.dead_lettered.height,
            finished_uploads=finished,
        )

    def _check_offsets(self, db: sqlite3.Connection, outcome: BatchOutcome) -> None:
        """Compare-and-set guard: the batch must start where the store says we are."""
        stored = self.load_offsets(outcome.topic)
        for partition, (started_from, _) in outcome.offsets.items():
            if stored.get(partition) != started_from:
                raise StaleBatchError(
                    f"partition {partition} moved on (store {stored.get(partition)}, "
                    f"batch started from {started_from}); batch discarded"
                )

    def _lookup(
        self, db: sqlite3.Connection, outcome: BatchOutcome
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Which of the batch's eventIds and provenances the store already knows."""
        # One JSON array per question keeps the per-event work in SQLite's C code.
        # The hash only narrows the search; classify() matches the full eventId.
        hashes = json.dumps(event_id_hashes(outcome.events["eventId"]).unique().to_list())
        provenance = pl.concat(
            [provenance_of(outcome.events), provenance_of(outcome.dead_lettered)]
        )
        known = db.execute(
            "SELECT s.event_id, s.upload_ref, s.row_number FROM json_each(?) j"
            " JOIN seen_events s ON s.id_hash = j.value",
            (hashes,),
        ).fetchall()
        settled = db.execute(
            "SELECT DISTINCT r.upload_ref, r.row_number FROM json_each(?) j"
            " JOIN settled_rows r ON r.upload_ref = j.value ->> 0 AND r.row_number = j.value ->> 1",
            (json.dumps(provenance.rows()),),
        ).fetchall()
        known_schema = {"eventId": pl.String, **PROVENANCE_SCHEMA}
        return (
            pl.DataFrame(known, schema=known_schema, orient="row"),
            pl.DataFrame(settled, schema=PROVENANCE_SCHEMA, orient="row"),
        )

    def _record_outcomes(self, db: sqlite3.Connection, classified: Classified) -> None:
        now = int(time.time())
        accepted = classified.accepted.select("eventId", *PROVENANCE)
        # Inserting in hash order keeps the index writes local.
        accepted = accepted.with_columns(event_id_hashes(accepted["eventId"])).sort("idHash")
        db.executemany(
            "INSERT INTO seen_events VALUES (?, ?, ?, ?, ?)",
            ((*row, now) for row in accepted.select("idHash", "eventId", *PROVENANCE).iter_rows()),
        )
        for frame, outcome in (
            (classified.duplicates, "duplicate"),
            (classified.dead_lettered, "dead_letter"),
        ):
            db.executemany(
                "INSERT INTO settled_rows VALUES (?, ?, ?)",
                ((*row, outcome) for row in provenance_of(frame).iter_rows()),
            )

    def _add_totals(self, db: sqlite3.Connection, deltas: pl.DataFrame) -> None:
        """Add each delta to its running total: exact integer halves, carrying lo into hi."""
        db.executemany(
            "INSERT INTO totals VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (account_id, pricing_unit, custom_unit, day) DO UPDATE SET"
            " events = events + excluded.events,"
            f" quantity_hi = quantity_hi + excluded.quantity_hi"
            f"   + (quantity_lo + excluded.quantity_lo) / {HALF},"
            f" quantity_lo = (quantity_lo + excluded.quantity_lo) % {HALF},"
            f" billable_hi = billable_hi + excluded.billable_hi"
            f"   + (billable_lo + excluded.billable_lo) / {HALF},"
            f" billable_lo = (billable_lo + excluded.billable_lo) % {HALF}",
            deltas.iter_rows(),
        )

    def _count_progress(self, db: sqlite3.Connection, classified: Classified) -> list[str]:
        """Add the batch's outcomes to each upload; return the uploads that became Done."""
        counts = progress_by_upload(classified)
        db.executemany(
            "UPDATE uploads SET accepted = accepted + ?, duplicates = duplicates + ?,"
            " dead_lettered = dead_lettered + ? WHERE reference = ?",
            counts.select(*OUTCOMES, "uploadRef").iter_rows(),
        )
        return self._finish_if_complete(db, counts["uploadRef"].to_list())

    def _write_offsets(self, db: sqlite3.Connection, outcome: BatchOutcome) -> None:
        db.executemany(
            "INSERT INTO offsets VALUES (?, ?, ?, ?) ON CONFLICT (topic, partition)"
            " DO UPDATE SET log_id = excluded.log_id, next_offset = excluded.next_offset",
            (
                (outcome.topic, partition, outcome.log_id, next_offset)
                for partition, (_, next_offset) in outcome.offsets.items()
            ),
        )

    def prune_seen(self) -> int:
        """Forget eventIds older than the retention window; return how many."""
        cutoff = int(time.time()) - self._retention_s
        with self._transaction() as db:
            return db.execute("DELETE FROM seen_events WHERE seen_at < ?", (cutoff,)).rowcount

    # ---- reads -------------------------------------------------------------------

    def total_rows(
        self, account: str | None, unit: str | None, period: str | None
    ) -> Sequence[tuple[Any, ...]]:
        """Raw per-day total rows matching the filters."""
        where, params = totals_filter(account, unit, period)
        return self._db.execute(
            "SELECT account_id, pricing_unit, custom_unit, events,"
            " quantity_hi, quantity_lo, billable_hi, billable_lo"
            f" FROM totals{where} ORDER BY account_id, pricing_unit, custom_unit",
            params,
        ).fetchall()
