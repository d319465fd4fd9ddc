"""The embedded store: one SQLite file holding totals, dedupe state, offsets and uploads.

A consumed batch is applied in one `BEGIN IMMEDIATE` transaction: new eventIds, total
deltas, upload progress and the next offsets commit together or not at all, which is what
makes totals exactly-once across crashes.

A batch is written as blobs, not a row per event: one `seen_blocks` row (its accepted
eventIds: `consumers.store.sqlite_seen`) and one `total_deltas` row (its totals, folded
later: `consumers.store.sqlite_deltas`). Opening the file and everything but the batch path
is `SqliteLedger`'s.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import polars as pl

from consumers.aggregate import aggregate
from consumers.conflicts import (
    SETTLED_ARRIVAL_SCHEMA,
    compare_with_first,
    conflict_rows,
    find_conflicts,
    rows_to_look_up,
)
from consumers.dedupe import Classified, classify
from consumers.event_hash import with_id_hashes
from consumers.store.frames import COUNTED, PROVENANCE, progress_by_upload
from consumers.store.records import BatchOutcome, BatchStats
from consumers.store.sqlite_deltas import (
    FOLD_PART_ROWS,
    append_deltas,
    combine_pending,
    fold_oldest_part,
)
from consumers.store.sqlite_ledger import SqliteLedger, open_connection, write_transaction
from consumers.store.sqlite_seen import SeenBlocks
from meterpipe.errors import StaleBatchError, StoreError

__all__ = ["SqliteStore"]

CONFLICT_INSERT = (
    "INSERT OR IGNORE INTO conflicts (event_id, upload_ref, row_number, first_upload_ref,"
    " first_row_number, first_position, this_position, this_values)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


class SqliteStore(SqliteLedger):
    """Totals, dedupe state, offsets and upload records in one SQLite file."""

    def __init__(self, connection: sqlite3.Connection, retention_days: int = 35) -> None:
        super().__init__(connection)
        self._retention_s = retention_days * 86_400
        self._seen = SeenBlocks()

    @classmethod
    def open(cls, path: Path, retention_days: int = 35) -> SqliteStore:
        """Open (creating and migrating if needed) the store file at `path`."""
        return cls(open_connection(path), retention_days)

    def apply_batch(self, outcome: BatchOutcome) -> BatchStats:
        """Commit one batch's effects atomically; raise StaleBatchError if it was fenced."""
        try:
            with write_transaction(self._db) as db:
                self._check_offsets(outcome)
                # Hashed once: the lookup uses every event's hash, the new block the accepted ones'.
                events = with_id_hashes(outcome.events)
                known, settled = self._seen.lookup(db, events, outcome.dead_lettered)
                classified = classify(events, outcome.dead_lettered, known, settled)
                conflicts = self._conflicts(db, classified, known)
                appended = self._seen.append(db, classified)
                db.executemany(CONFLICT_INSERT, conflict_rows(conflicts, outcome.compared))
                append_deltas(db, aggregate(classified.accepted))
                finished = self._count_progress(db, classified, conflicts)
                self._write_offsets(db, outcome)
        except sqlite3.Error as exc:
            raise StoreError(f"batch not committed: {exc}") from exc
        self._seen.added(*appended)  # only once committed: a rolled-back batch added nothing
        return BatchStats(
            accepted=classified.accepted.height,
            duplicates=classified.duplicates.height,
            redelivered=classified.redelivered,
            dead_lettered=classified.dead_lettered.height,
            finished_uploads=finished,
            conflicts=conflicts.height,
        )

    def _conflicts(
        self, db: sqlite3.Connection, classified: Classified, known: pl.DataFrame
    ) -> pl.DataFrame:
        """The batch's duplicates in conflict with their first arrival (`consumers.conflicts`)."""
        compared = compare_with_first(classified, known)
        wanted = rows_to_look_up(compared)
        found = []
        if wanted.height:
            found = db.execute(
                "SELECT upload_ref, row_number, digest, kafka_position FROM settled_rows"
                " WHERE outcome = 'accepted' AND (upload_ref, row_number) IN"
                " (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]')"
                "  FROM json_each(?))",
                (json.dumps(wanted.rows()),),
            ).fetchall()
        settled = pl.DataFrame(found, schema=SETTLED_ARRIVAL_SCHEMA, orient="row")
        return find_conflicts(compared, classified, settled)

    def _check_offsets(self, outcome: BatchOutcome) -> None:
        """Compare-and-set guard: the batch must start where the store says we are."""
        stored = self.load_offsets(outcome.topic)
        for partition, (started_from, _) in outcome.offsets.items():
            if stored.get(partition) != started_from:
                raise StaleBatchError(
                    f"partition {partition} moved on (store {stored.get(partition)}, "
                    f"batch started from {started_from}); batch discarded"
                )

    def _count_progress(
        self, db: sqlite3.Connection, classified: Classified, conflicts: pl.DataFrame
    ) -> list[str]:
        """Add the batch's outcomes to each upload; return the uploads that became Done."""
        counts = progress_by_upload(classified, conflicts)
        db.executemany(
            "UPDATE uploads SET accepted = accepted + ?, duplicates = duplicates + ?,"
            " dead_lettered = dead_lettered + ?, conflicts = conflicts + ? WHERE reference = ?",
            counts.select(*COUNTED, "uploadRef").iter_rows(),
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

    def record_event_ids(self, event_ids: pl.Series) -> None:
        """Seed the dedupe state with eventIds counted elsewhere (no provenance, no totals).

        For taking over from another system, and for the benchmark's store of 50M ids.
        """
        accepted = with_id_hashes(pl.DataFrame({"eventId": event_ids})).with_columns(
            pl.lit(None, pl.String).alias("uploadRef"), pl.lit(None, pl.Int64).alias("rowNumber")
        )
        nothing = accepted.clear()
        with write_transaction(self._db) as db:
            self._seen.catch_up(db)
            none = nothing.select(PROVENANCE)
            classified = Classified(accepted, accepted, none, nothing, nothing, 0, none)
            appended = self._seen.append(db, classified)
        self._seen.added(*appended)

    def prune_seen(self) -> int:
        """Forget eventIds older than the retention window; return how many."""
        cutoff = int(time.time()) - self._retention_s
        with write_transaction(self._db) as db:
            self._prune_settled(db, cutoff)
            pruned, first_kept = self._seen.prune(db, cutoff)
        self._seen.forget_rows_below(first_kept)
        return pruned

    def start_fold(self, part_rows: int = FOLD_PART_ROWS) -> int:
        """Combine the batches' pending deltas into key-ordered parts; return the rows.

        One upsert per (account, unit, day), however many batches touched it. The parts
        (of `part_rows`) are folded one per `fold_part` transaction, so batches commit in
        between.
        """
        try:
            with write_transaction(self._db) as db:
                return combine_pending(db, part_rows)
        except sqlite3.Error as exc:
            raise StoreError(f"totals not combined for folding: {exc}") from exc

    def fold_part(self) -> int:
        """Add the oldest combined part to `totals`; return its rows (0: no part waits)."""
        try:
            with write_transaction(self._db) as db:
                return fold_oldest_part(db)
        except sqlite3.Error as exc:
            raise StoreError(f"totals not folded: {exc}") from exc

    def fold_totals(self) -> int:
        """Fold every pending delta now; return the rows added to `totals`."""
        self.start_fold()
        folded = 0
        while rows := self.fold_part():
            folded += rows
        return folded
