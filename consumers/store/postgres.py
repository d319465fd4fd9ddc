"""The server store: totals, dedupe state, offsets and uploads in a PostgreSQL schema.

Same contract as `SqliteStore`: a batch's new eventIds, totals, upload progress and next
offsets commit in one transaction. Its first statements claim the batch's partitions
(row locks on their offsets), so a consumer that lost them to another is fenced before
it writes anything, and every lookup after the claim sees what the winner committed.

Partitions do not own eventIds: the same eventId can reach two consumers at once on two
partitions (producers hashing keys differently, a partition count raised mid-upload). The
store itself arbitrates: eventIds are a unique key and settled rows a primary key, and a
batch's outcomes are inserted with ON CONFLICT DO NOTHING. If any insert finds its key
taken, another consumer committed it after this batch's lookup: the batch's outcomes are
rolled back to a savepoint, looked up and classified again, and written again. Per-event
data travels as array literals (`pg_arrays`) expanded by `unnest`: a few statements
per batch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import polars as pl
import psycopg

from consumers.aggregate import TOTAL_KEYS, aggregate
from consumers.conflicts import (
    ARRIVAL_SCHEMA,
    SETTLED_ARRIVAL_SCHEMA,
    compare_with_first,
    conflict_rows,
    find_conflicts,
    rows_to_look_up,
)
from consumers.content_digest import FIRST_ARRIVAL
from consumers.decimals import DECIMAL_SCALE, HALF
from consumers.dedupe import Classified, classify
from consumers.event_hash import ID_HASH, with_id_hashes
from consumers.store.connection import PostgresConnection
from consumers.store.frames import (
    COUNTED,
    PROVENANCE,
    SETTLED_SCHEMA,
    progress_by_upload,
    provenance_of,
    settled_outcomes,
    settled_with_first_arrival,
)
from consumers.store.pg_arrays import array_literals
from consumers.store.postgres_ledger import PostgresLedger, open_connection
from consumers.store.records import BatchOutcome, BatchStats, StoredOffset
from meterpipe.errors import StaleBatchError, StoreError

__all__ = ["PostgresStore"]

Cursor = psycopg.Cursor[tuple[Any, ...]]
# NUMERIC literal: multiplying by it is exact, where dividing may round.
UNIT = f"1e-{DECIMAL_SCALE}"
# Each retry follows another consumer's commit of a key this batch wanted, so retries are
# few; the bound only turns a bug into an error instead of a loop.
MAX_SETTLE_ATTEMPTS = 50
CONFLICT_INSERT = (
    "INSERT INTO conflicts (event_id, upload_ref, row_number, first_upload_ref,"
    " first_row_number, first_position, this_position, this_values)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)
TOTAL_COLUMNS = (
    "accountId", "pricingUnit", "customUnit", "day", "events",
    "quantityHi", "quantityLo", "billableQuantityHi", "billableQuantityLo",
)  # fmt: skip


class PostgresStore(PostgresLedger):
    """Totals, dedupe state, offsets and upload records in one PostgreSQL schema."""

    def __init__(self, connection: PostgresConnection, retention_days: int = 35) -> None:
        super().__init__(connection)
        self._retention_s = retention_days * 86_400

    @classmethod
    def open(
        cls, url: str, retention_days: int = 35, idle_in_transaction_timeout_s: float | None = None
    ) -> PostgresStore:
        """Connect to `url` and bring its schema (the search_path's first) up to date.

        `idle_in_transaction_timeout_s` is applied to every session (None: the server's).
        """
        return cls(open_connection(url, idle_in_transaction_timeout_s), retention_days)

    def apply_batch(self, outcome: BatchOutcome) -> BatchStats:
        """Commit one batch's effects atomically; raise StaleBatchError if it was fenced."""
        try:
            connection = self._db.connect()
            with connection.transaction(), connection.cursor() as cur:
                _claim_offsets(cur, outcome)
                classified, conflicts = _settle(connection, cur, outcome)
                _add_totals(cur, aggregate(classified.accepted))
                finished = self._count_progress(cur, classified, conflicts)
                _write_offsets(cur, outcome)
        except psycopg.Error as exc:
            # A batch that failed mid-statement can leave the connection unusable without
            # marking it broken (an executemany's pipeline aborted when the server went
            # away): the retry starts on a fresh one.
            self._db.close()
            raise StoreError(f"batch not committed: {exc}") from exc
        return BatchStats(
            accepted=classified.accepted.height,
            duplicates=classified.duplicates.height,
            redelivered=classified.redelivered,
            dead_lettered=classified.dead_lettered.height,
            finished_uploads=finished,
            conflicts=conflicts.height,
        )

    def _count_progress(
        self, cur: Cursor, classified: Classified, conflicts: pl.DataFrame
    ) -> list[str]:
        """Add the batch's outcomes to each upload; return the uploads that became Done."""
        counts = progress_by_upload(classified, conflicts)
        cur.execute(
            "UPDATE uploads u SET accepted = u.accepted + c.a, duplicates = u.duplicates + c.d,"
            " dead_lettered = u.dead_lettered + c.x, conflicts = u.conflicts + c.k"
            " FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], %s::text[])"
            " c(a, d, x, k, ref) WHERE u.reference = c.ref",
            array_literals(counts.select(*COUNTED, "uploadRef")),
        )
        return self._finish_if_complete(self._db, counts["uploadRef"].to_list())

    def prune_seen(self) -> int:
        """Forget eventIds older than the retention window; return how many."""
        cutoff = int(time.time()) - self._retention_s
        self._prune_settled(self._db, cutoff)
        return self._db.execute("DELETE FROM seen_events WHERE seen_at < ?", (cutoff,)).rowcount


def _claim_offsets(cur: Cursor, outcome: BatchOutcome) -> None:
    """Compare-and-set guard: lock the batch's partitions and check they start where it did.

    A partition the store has no position for is claimed by inserting a placeholder row:
    of two consumers starting it at once, the second waits on the first's insert and then
    finds the row taken, which `SELECT ... FOR UPDATE` alone (locking nothing) would miss.
    """
    starts = sorted(outcome.offsets.items())
    fresh = [partition for partition, (start, _) in starts if start is None]
    held = [partition for partition, (start, _) in starts if start is not None]
    claimed = cur.execute(
        "INSERT INTO offsets SELECT %s, p, %s, -1 FROM unnest(%s::int[]) p"
        " ON CONFLICT DO NOTHING RETURNING partition",
        (outcome.topic, outcome.log_id, fresh),
    ).fetchall()
    rows = cur.execute(
        "SELECT partition, log_id, next_offset FROM offsets"
        " WHERE topic = %s AND partition = ANY(%s::int[]) ORDER BY partition FOR UPDATE",
        (outcome.topic, held),
    ).fetchall()
    stored = {partition: StoredOffset(log_id, offset) for partition, log_id, offset in rows}
    lost = set(fresh) - {partition for (partition,) in claimed}
    lost |= {p for p in held if stored.get(p) != outcome.offsets[p][0]}
    if lost:
        raise StaleBatchError(
            f"partitions {sorted(lost)} moved on (store {stored}, batch started from "
            f"{ {p: outcome.offsets[p][0] for p in sorted(lost)} }); batch discarded"
        )


def _lookup(cur: Cursor, outcome: BatchOutcome) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Which of the batch's eventIds and provenances the store already knows."""
    # The hash only narrows the search; classify() matches the full eventId.
    hashes = array_literals(with_id_hashes(outcome.events).select(pl.col(ID_HASH).unique()))
    provenance = pl.concat([provenance_of(outcome.events), provenance_of(outcome.dead_lettered)])
    known = cur.execute(
        "SELECT event_id, upload_ref, row_number, digest, kafka_position FROM seen_events"
        " WHERE id_hash = ANY(%s::bigint[])",
        hashes,
    ).fetchall()
    settled = cur.execute(
        "SELECT DISTINCT r.upload_ref, r.row_number, r.outcome"
        " FROM unnest(%s::text[], %s::bigint[]) p(ref, num)"
        " JOIN settled_rows r ON r.upload_ref = p.ref AND r.row_number = p.num",
        array_literals(provenance),
    ).fetchall()
    return (
        pl.DataFrame(known, schema=ARRIVAL_SCHEMA, orient="row"),
        pl.DataFrame(settled, schema=SETTLED_SCHEMA, orient="row"),
    )


class _LostRace(Exception):
    """Another consumer committed one of the batch's eventIds or rows after its lookup."""


def _settle(
    connection: psycopg.Connection[Any], cur: Cursor, outcome: BatchOutcome
) -> tuple[Classified, pl.DataFrame]:
    """Classify the batch against the store and record every outcome, so that no eventId
    or row is settled twice whatever other consumers commit meanwhile (module docstring);
    return it with its conflicts, recorded too.

    A deadlock between two consumers inserting overlapping keys is a lost race too: the
    server aborts one statement, and the loser retries after the winner committed.
    """
    for _ in range(MAX_SETTLE_ATTEMPTS):
        try:
            with connection.transaction():
                known, settled = _lookup(cur, outcome)
                classified = classify(outcome.events, outcome.dead_lettered, known, settled)
                conflicts = _conflicts(cur, classified, known)
                _record_outcomes(cur, classified)
                cur.executemany(CONFLICT_INSERT, conflict_rows(conflicts, outcome.compared))
                return classified, conflicts
        except (_LostRace, psycopg.errors.DeadlockDetected):
            continue
    raise StoreError(f"batch lost {MAX_SETTLE_ATTEMPTS} races for its eventIds in a row")


def _conflicts(cur: Cursor, classified: Classified, known: pl.DataFrame) -> pl.DataFrame:
    """The batch's duplicates in conflict with their first arrival (`consumers.conflicts`)."""
    compared = compare_with_first(classified, known)
    wanted = rows_to_look_up(compared)
    found: list[tuple[Any, ...]] = []
    if wanted.height:
        found = cur.execute(
            "SELECT r.upload_ref, r.row_number, r.digest, r.kafka_position"
            " FROM unnest(%s::text[], %s::bigint[]) p(ref, num)"
            " JOIN settled_rows r ON r.upload_ref = p.ref AND r.row_number = p.num"
            " WHERE r.outcome = 'accepted'",
            array_literals(wanted),
        ).fetchall()
    settled = pl.DataFrame(found, schema=SETTLED_ARRIVAL_SCHEMA, orient="row")
    return find_conflicts(compared, classified, settled)


def _record_outcomes(cur: Cursor, classified: Classified) -> None:
    """Insert new eventIds and settled rows; raise _LostRace if any key was already taken.

    Keys are inserted in order, so two consumers wanting the same keys wait for each other
    in the same order (and hash order keeps the index writes local).
    """
    claimed = with_id_hashes(classified.claimed)
    first_arrival = [
        pl.col(c) if c in claimed.columns else pl.lit(None, pl.Int64).alias(c)
        for c in FIRST_ARRIVAL
    ]
    accepted = claimed.select(ID_HASH, "eventId", *PROVENANCE, *first_arrival)
    accepted = accepted.sort(ID_HASH, "eventId")
    _write_exactly(
        cur,
        "INSERT INTO seen_events (id_hash, event_id, upload_ref, row_number, digest,"
        " kafka_position, seen_at) SELECT h, e, r, n, d, p, %s"
        " FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::bigint[], %s::bigint[],"
        " %s::bigint[]) t(h, e, r, n, d, p) ON CONFLICT DO NOTHING",
        (int(time.time()), *array_literals(accepted)),
        accepted.height,
    )
    _write_exactly(
        cur,
        "DELETE FROM settled_rows r USING unnest(%s::text[], %s::bigint[]) t(ref, num)"
        " WHERE r.upload_ref = t.ref AND r.row_number = t.num",
        array_literals(classified.revived),
        classified.revived.height,
    )
    for frame, outcome in settled_outcomes(classified):
        rows = settled_with_first_arrival(frame).sort(PROVENANCE)
        _write_exactly(
            cur,
            "INSERT INTO settled_rows (upload_ref, row_number, digest, kafka_position, outcome)"
            " SELECT r, n, d, p, %s FROM unnest(%s::text[], %s::bigint[], %s::bigint[],"
            " %s::bigint[]) t(r, n, d, p) ON CONFLICT DO NOTHING",
            (outcome, *array_literals(rows)),
            rows.height,
        )


def _write_exactly(cur: Cursor, statement: str, params: Sequence[Any], expected: int) -> None:
    """Run `statement`; raise _LostRace unless it wrote (or deleted) `expected` rows."""
    if cur.execute(statement, params).rowcount != expected:
        raise _LostRace


def _add_totals(cur: Cursor, deltas: pl.DataFrame) -> None:
    """Add each delta to its running total, rebuilt exactly from the (hi, lo) halves.

    In key order: consumers that upsert overlapping keys then lock them in the same order,
    so one waits for the other instead of deadlocking.
    """
    deltas = deltas.sort(TOTAL_KEYS)
    amounts = ", ".join(
        f"({hi}::numeric * {HALF} + {lo}) * {UNIT}" for hi, lo in (("qh", "ql"), ("bh", "bl"))
    )
    cur.execute(
        f"INSERT INTO totals SELECT a, p, c, d, e, {amounts}"
        " FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::bigint[],"
        " %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[]) t(a, p, c, d, e, qh, ql, bh, bl)"
        " ON CONFLICT (account_id, pricing_unit, custom_unit, day) DO UPDATE SET"
        " events = totals.events + excluded.events,"
        " quantity = totals.quantity + excluded.quantity,"
        " billable_quantity = totals.billable_quantity + excluded.billable_quantity",
        array_literals(deltas.select(TOTAL_COLUMNS)),
    )


def _write_offsets(cur: Cursor, outcome: BatchOutcome) -> None:
    partitions = sorted(outcome.offsets)
    cur.execute(
        "UPDATE offsets o SET log_id = %s, next_offset = b.n"
        " FROM unnest(%s::int[], %s::bigint[]) b(p, n) WHERE o.topic = %s AND o.partition = b.p",
        (outcome.log_id, partitions, [outcome.offsets[p][1] for p in partitions], outcome.topic),
    )
