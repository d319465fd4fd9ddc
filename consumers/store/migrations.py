"""Versioned schemas of the SQLite and PostgreSQL stores, applied in order at open.

Each entry is applied once, inside the transaction that records its version, so several
processes opening the store at once end with the same schema and no error. The two
lists hold the same tables, except where SQLite writes blobs to spare per-row inserts
(`seen_blocks`, `total_deltas`); PostgreSQL keeps totals as exact NUMERIC, SQLite as
integer halves (see `consumers.aggregate`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

__all__ = ["POSTGRES_MIGRATIONS", "SQLITE_MIGRATIONS", "apply_migrations"]


class _Executes(Protocol):
    """A sqlite3 connection or a psycopg cursor: both run a statement and return rows."""

    def execute(self, query: Any, params: Any = ..., /) -> Any:
        """Run one statement."""


def apply_migrations(db: _Executes, scripts: Sequence[str], placeholder: str) -> None:
    """Apply, in the caller's transaction, every script newer than the recorded version."""
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = db.execute("SELECT max(version) FROM schema_version").fetchone()
    current = (row[0] if row else None) or 0
    for version, script in enumerate(scripts, start=1):
        if version > current:
            for statement in filter(str.strip, script.split(";")):
                db.execute(statement)
            db.execute(f"INSERT INTO schema_version VALUES ({placeholder})", (version,))


SQLITE_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE uploads (
        reference TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        description TEXT,
        upload_key TEXT NOT NULL,
        status TEXT NOT NULL,
        records INTEGER NOT NULL DEFAULT 0,
        expected INTEGER,
        accepted INTEGER NOT NULL DEFAULT 0,
        duplicates INTEGER NOT NULL DEFAULT 0,
        dead_lettered INTEGER NOT NULL DEFAULT 0,
        rejected_rows INTEGER NOT NULL DEFAULT 0,
        assigned_ids INTEGER NOT NULL DEFAULT 0,
        uploaded_at TEXT NOT NULL,
        finished_at TEXT,
        errors TEXT NOT NULL DEFAULT '[]',
        error_total INTEGER NOT NULL DEFAULT 0,
        source_path TEXT,
        duplicate_of TEXT
    );
    CREATE INDEX uploads_status ON uploads (status, uploaded_at);
    CREATE INDEX uploads_key ON uploads (upload_key);
    CREATE TABLE seen_events (
        id_hash INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        upload_ref TEXT,
        row_number INTEGER,
        seen_at INTEGER NOT NULL
    );
    CREATE INDEX seen_events_hash ON seen_events (id_hash);
    CREATE TABLE settled_rows (
        upload_ref TEXT NOT NULL,
        row_number INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        PRIMARY KEY (upload_ref, row_number)
    ) WITHOUT ROWID;
    CREATE TABLE totals (
        account_id TEXT NOT NULL,
        pricing_unit TEXT NOT NULL,
        custom_unit TEXT NOT NULL,
        day TEXT NOT NULL,
        events INTEGER NOT NULL,
        quantity_hi INTEGER NOT NULL,
        quantity_lo INTEGER NOT NULL,
        billable_hi INTEGER NOT NULL,
        billable_lo INTEGER NOT NULL,
        PRIMARY KEY (account_id, pricing_unit, custom_unit, day)
    ) WITHOUT ROWID;
    CREATE TABLE offsets (
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        log_id TEXT NOT NULL,
        next_offset INTEGER NOT NULL,
        PRIMARY KEY (topic, partition)
    ) WITHOUT ROWID;
    """,
    """
    CREATE TABLE periods (
        period TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        changed_at TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
    # Dedupe moves to an in-memory index (consumers.seen_index): seen_events becomes
    # append-only, and each batch's hashes are kept as one blob so the index loads fast.
    """
    DROP INDEX seen_events_hash;
    CREATE TABLE seen_blocks (
        first_row INTEGER PRIMARY KEY,
        seen_at INTEGER NOT NULL,
        hashes BLOB NOT NULL
    );
    """,
    # A batch's totals are appended as one blob of deltas and folded into `totals` when
    # the consumer is idle or has appended enough: a row write per batch, not an upsert
    # per (account, unit, day). Readers add the pending deltas to `totals`.
    """
    CREATE TABLE total_deltas (
        batch INTEGER PRIMARY KEY,
        deltas BLOB NOT NULL
    );
    """,
    # A batch's accepted eventIds and provenance move from seen_events rows into one blob
    # beside their hashes; older blocks (events NULL) keep their rows in seen_events.
    """
    ALTER TABLE seen_blocks ADD COLUMN events BLOB;
    """,
    # A fold first combines the pending deltas into key-ordered parts (fold_part 1), then
    # adds one part at a time to `totals`, so batches commit between parts.
    """
    ALTER TABLE total_deltas ADD COLUMN fold_part INTEGER NOT NULL DEFAULT 0;
    """,
    # Conflicts: a duplicate whose content differs from its eventId's first arrival. Seen
    # blocks keep each first arrival's content digest and Kafka position in their records
    # (consumers.store.seen_rows); settled `accepted` siblings keep theirs here.
    """
    ALTER TABLE uploads ADD COLUMN conflicts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE settled_rows ADD COLUMN digest INTEGER;
    ALTER TABLE settled_rows ADD COLUMN kafka_position INTEGER;
    CREATE TABLE conflicts (
        upload_ref TEXT NOT NULL,
        row_number INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        first_upload_ref TEXT,
        first_row_number INTEGER,
        first_position INTEGER,
        this_position INTEGER NOT NULL,
        this_values TEXT,
        PRIMARY KEY (upload_ref, row_number)
    ) WITHOUT ROWID;
    """,
    # The HTTP API: its keys (only a SHA-256 of each is kept), and the options an upload was
    # sent with, so that publishing it again after a restart keeps them.
    """
    CREATE TABLE api_keys (
        name TEXT PRIMARY KEY,
        key_hash TEXT NOT NULL UNIQUE,
        scopes TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE upload_options (
        reference TEXT PRIMARY KEY,
        skip_invalid INTEGER,
        file_format TEXT
    );
    """,
)

POSTGRES_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE uploads (
        reference TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        description TEXT,
        upload_key TEXT NOT NULL,
        status TEXT NOT NULL,
        records BIGINT NOT NULL DEFAULT 0,
        expected BIGINT,
        accepted BIGINT NOT NULL DEFAULT 0,
        duplicates BIGINT NOT NULL DEFAULT 0,
        dead_lettered BIGINT NOT NULL DEFAULT 0,
        rejected_rows BIGINT NOT NULL DEFAULT 0,
        assigned_ids BIGINT NOT NULL DEFAULT 0,
        uploaded_at TEXT NOT NULL,
        finished_at TEXT,
        errors TEXT NOT NULL DEFAULT '[]',
        error_total BIGINT NOT NULL DEFAULT 0,
        source_path TEXT,
        duplicate_of TEXT
    );
    CREATE INDEX uploads_status ON uploads (status, uploaded_at);
    CREATE INDEX uploads_key ON uploads (upload_key);
    CREATE TABLE seen_events (
        id_hash BIGINT NOT NULL,
        event_id TEXT NOT NULL,
        upload_ref TEXT,
        row_number BIGINT,
        seen_at BIGINT NOT NULL
    );
    CREATE INDEX seen_events_hash ON seen_events (id_hash);
    CREATE INDEX seen_events_age ON seen_events (seen_at);
    CREATE TABLE settled_rows (
        upload_ref TEXT NOT NULL,
        row_number BIGINT NOT NULL,
        outcome TEXT NOT NULL,
        PRIMARY KEY (upload_ref, row_number)
    );
    CREATE TABLE totals (
        account_id TEXT NOT NULL,
        pricing_unit TEXT NOT NULL,
        custom_unit TEXT NOT NULL,
        day TEXT NOT NULL,
        events BIGINT NOT NULL,
        quantity NUMERIC NOT NULL,
        billable_quantity NUMERIC NOT NULL,
        PRIMARY KEY (account_id, pricing_unit, custom_unit, day)
    );
    CREATE TABLE offsets (
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        log_id TEXT NOT NULL,
        next_offset BIGINT NOT NULL,
        PRIMARY KEY (topic, partition)
    );
    CREATE TABLE periods (
        period TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        changed_at TEXT NOT NULL
    );
    """,
    # An eventId is accepted once, whichever consumer and partition it comes through: the
    # unique key makes acceptance atomic. Copies a store may hold from before (at most one
    # of them was the first) are dropped first, keeping the earliest.
    """
    DELETE FROM seen_events a USING seen_events b
        WHERE a.event_id = b.event_id AND (a.seen_at, a.ctid) > (b.seen_at, b.ctid);
    CREATE UNIQUE INDEX seen_events_identity ON seen_events (id_hash, event_id);
    DROP INDEX seen_events_hash;
    """,
    # Conflicts: a duplicate whose content differs from its eventId's first arrival. The
    # first arrival's content digest and Kafka position are kept with its dedupe state.
    """
    ALTER TABLE uploads ADD COLUMN conflicts BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE seen_events ADD COLUMN digest BIGINT;
    ALTER TABLE seen_events ADD COLUMN kafka_position BIGINT;
    ALTER TABLE settled_rows ADD COLUMN digest BIGINT;
    ALTER TABLE settled_rows ADD COLUMN kafka_position BIGINT;
    CREATE TABLE conflicts (
        upload_ref TEXT NOT NULL,
        row_number BIGINT NOT NULL,
        event_id TEXT NOT NULL,
        first_upload_ref TEXT,
        first_row_number BIGINT,
        first_position BIGINT,
        this_position BIGINT NOT NULL,
        this_values TEXT,
        PRIMARY KEY (upload_ref, row_number)
    );
    """,
    # The HTTP API: its keys (only a SHA-256 of each is kept), and the options an upload was
    # sent with, so that publishing it again after a restart keeps them.
    """
    CREATE TABLE api_keys (
        name TEXT PRIMARY KEY,
        key_hash TEXT NOT NULL UNIQUE,
        scopes TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE upload_options (
        reference TEXT PRIMARY KEY,
        skip_invalid INTEGER,
        file_format TEXT
    );
    """,
)
