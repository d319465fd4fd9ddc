"""Upload records: created by the publisher, advanced by consumers, read by the CLI.

Written as plain SQL shared by every store backend, with `?` placeholders: a backend
whose driver spells them differently passes a connection adapter (see `SqlConnection`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any, Generic, Protocol, TypeVar

from consumers.store.keys import KeyQueries
from consumers.store.records import ConflictRecord, StoredOffset
from consumers.store.stats import STATS_TABLES, StoreStats, TableStats
from schemas.uploads import UploadRecord, UploadStatus, UploadSummary, utc_now, utc_timestamp

__all__ = ["SqlConnection", "SqlCursor", "UploadQueries", "totals_filter"]

UPLOAD_COLUMNS = (
    "reference, name, description, upload_key, status, records, expected, accepted,"
    " duplicates, dead_lettered, rejected_rows, assigned_ids, uploaded_at, finished_at,"
    " errors, error_total, source_path, duplicate_of, conflicts"
)
CONFLICT_COLUMNS = (
    "event_id, row_number, first_upload_ref, first_row_number, first_position, this_position,"
    " this_values"
)
# A table's bytes on disk, indexes included: PostgreSQL knows it at once; SQLite's dbstat
# walks the table's pages (fast next to counting its rows, which walks them too).
TABLE_BYTES_SQL = {
    "postgresql": "SELECT pg_total_relation_size(to_regclass(?))",
    "sqlite": "SELECT sum(pgsize) FROM dbstat WHERE aggregate = TRUE AND name IN"
    " (SELECT name FROM sqlite_schema WHERE tbl_name = ? AND rootpage > 0)",
}


class SqlCursor(Protocol):
    """The part of a DB-API cursor the shared queries read."""

    @property
    def rowcount(self) -> int:
        """Rows the statement changed."""

    def fetchone(self) -> Any:
        """The next row, or None."""

    def fetchall(self) -> Sequence[Any]:
        """Every remaining row."""


class SqlConnection(Protocol):
    """A connection that runs one `?`-placeholder statement (sqlite3's `execute`), and closes."""

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> SqlCursor:
        """Run one statement."""

    def close(self) -> None:
        """Release the connection."""


Connection = TypeVar("Connection", bound=SqlConnection)


def totals_filter(
    account: str | None, unit: str | None, period: str | None
) -> tuple[str, list[str]]:
    """The WHERE clause (or "") and parameters selecting total rows by the CLI's filters."""
    clauses, params = [], []
    if account:
        # UUID accounts are stored lowercase; other references (Solvimon) as written.
        clauses.append("account_id IN (?, ?)")
        params += [account, account.lower()]
    if unit:
        clauses.append("(pricing_unit = ? OR custom_unit = ?)")
        params += [unit, unit]
    if period:
        clauses.append("substr(day, 1, 7) = ?")
        params.append(period)
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params


def _record(row: tuple[Any, ...]) -> UploadRecord:
    (ref, name, desc, key, status, records, expected, accepted, dups, dead, rejected,
     assigned, uploaded, finished, errors, error_total, source, duplicate_of,
     conflicts) = row  # fmt: skip
    return UploadRecord(
        reference=ref, name=name, description=desc, upload_key=key, status=status,
        records=records, expected=expected, accepted=accepted, duplicates=dups,
        dead_lettered=dead, rejected_rows=rejected, assigned_ids=assigned,
        uploaded_at=uploaded, finished_at=finished, errors=json.loads(errors),
        error_total=error_total, source_path=source, duplicate_of=duplicate_of,
        conflicts=conflicts,
    )  # fmt: skip


class UploadQueries(KeyQueries[Connection], Generic[Connection]):
    """SQL both backends share (uploads, periods, offsets, keys), over each one's connection."""

    stats_tables: tuple[str, ...] = STATS_TABLES  # what `stats` counts: the growing tables

    def __init__(self, connection: Connection) -> None:
        self._db = connection

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def load_offsets(self, topic: str) -> dict[int, StoredOffset]:
        """Every stored position of `topic`, by partition."""
        rows = self._db.execute(
            "SELECT partition, log_id, next_offset FROM offsets WHERE topic = ?", (topic,)
        ).fetchall()
        return {partition: StoredOffset(log_id, offset) for partition, log_id, offset in rows}

    def create_upload(self, upload: UploadRecord) -> None:
        """Record a new upload in status Processing."""
        self._db.execute(
            f"INSERT INTO uploads ({UPLOAD_COLUMNS}) VALUES ({', '.join('?' * 19)})",
            (
                upload.reference, upload.name, upload.description, upload.upload_key,
                upload.status, upload.records, upload.expected, upload.accepted,
                upload.duplicates, upload.dead_lettered, upload.rejected_rows,
                upload.assigned_ids, upload.uploaded_at, upload.finished_at,
                upload.errors_json(), upload.error_total, upload.source_path,
                upload.duplicate_of, upload.conflicts,
            ),
        )  # fmt: skip

    def find_upload(self, reference: str) -> UploadRecord | None:
        """One upload by reference."""
        row = self._db.execute(
            f"SELECT {UPLOAD_COLUMNS} FROM uploads WHERE reference = ?", (reference,)
        ).fetchone()
        return _record(row) if row else None

    def list_conflicts(self, reference: str) -> list[ConflictRecord]:
        """The conflicts an upload's duplicates raised, in row order."""
        rows = self._db.execute(
            f"SELECT {CONFLICT_COLUMNS} FROM conflicts WHERE upload_ref = ? ORDER BY row_number",
            (reference,),
        ).fetchall()
        return [
            ConflictRecord(event_id, row, first_ref, first_row, first_at, this_at,
                           json.loads(values) if values is not None else None)
            for event_id, row, first_ref, first_row, first_at, this_at, values in rows
        ]  # fmt: skip

    def list_uploads(self, status: UploadStatus | None = None) -> list[UploadRecord]:
        """Uploads, newest first, optionally of one status."""
        where, params = ("WHERE status = ?", (status,)) if status else ("", ())
        rows = self._db.execute(
            f"SELECT {UPLOAD_COLUMNS} FROM uploads {where} ORDER BY uploaded_at DESC, reference",
            params,
        ).fetchall()
        return [_record(row) for row in rows]

    def record_upload_options(
        self, reference: str, skip_invalid: bool | None, file_format: str | None
    ) -> None:
        """Keep the options an upload was sent with (None: the settings decide)."""
        skip = None if skip_invalid is None else int(skip_invalid)
        self._db.execute(
            "INSERT INTO upload_options VALUES (?, ?, ?)", (reference, skip, file_format)
        )

    def upload_options(self, reference: str) -> tuple[bool | None, str | None]:
        """(skipInvalid, format) an upload was sent with; (None, None) if none were kept."""
        row = self._db.execute(
            "SELECT skip_invalid, file_format FROM upload_options WHERE reference = ?",
            (reference,),
        ).fetchone()
        if row is None:
            return None, None
        return (None if row[0] is None else bool(row[0])), row[1]

    def list_uploads_page(
        self, status: UploadStatus | None, limit: int, after: tuple[str, str] | None = None
    ) -> list[UploadRecord]:
        """At most `limit` uploads in `list_uploads` order, after (uploadedAt, reference)."""
        clauses: list[str] = []
        params: list[Any] = []
        if status:
            clauses.append("status = ?")
            params.append(status)
        if after is not None:
            clauses.append("(uploaded_at < ? OR (uploaded_at = ? AND reference > ?))")
            params += [after[0], after[0], after[1]]
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.execute(
            f"SELECT {UPLOAD_COLUMNS} FROM uploads {where}"
            " ORDER BY uploaded_at DESC, reference LIMIT ?",
            (*params, limit),
        ).fetchall()
        return [_record(row) for row in rows]

    def find_ingested(self, upload_key: str, other_than: str) -> UploadRecord | None:
        """The earliest other upload of the same bytes that was (or is being) ingested.

        Only uploads recorded before `other_than` count: the HTTP API records uploads
        before the watcher publishes them, and a later one must not make an earlier one
        its duplicate.
        """
        row = self._db.execute(
            f"SELECT {UPLOAD_COLUMNS} FROM uploads WHERE upload_key = ? AND reference != ?"
            " AND status != 'Error' AND duplicate_of IS NULL AND uploaded_at <= coalesce("
            "(SELECT uploaded_at FROM uploads WHERE reference = ?), uploaded_at)"
            " ORDER BY uploaded_at LIMIT 1",
            (upload_key, other_than, other_than),
        ).fetchone()
        return _record(row) if row else None

    def mark_duplicate(self, reference: str, of: str, records: int) -> None:
        """The same bytes were ingested before as `of`: Done, nothing ingested."""
        self._db.execute(
            "UPDATE uploads SET status = 'Done', duplicate_of = ?, records = ?, expected = 0,"
            " duplicates = ?, finished_at = ? WHERE reference = ?",
            (of, records, records, utc_now(), reference),
        )

    def period_states(self) -> dict[str, str]:
        """Every state an operator set, by `YYYY-MM` period."""
        return dict(self._db.execute("SELECT period, state FROM periods").fetchall())

    def set_period_state(self, period: str, state: str) -> None:
        """Record an operator's close, hold or reopen of a period."""
        self._db.execute(
            "INSERT INTO periods VALUES (?, ?, ?) ON CONFLICT (period)"
            " DO UPDATE SET state = excluded.state, changed_at = excluded.changed_at",
            (period, state, utc_now()),
        )

    def known_periods(self) -> list[str]:
        """Periods with usage or with a state set, oldest first."""
        rows = self._db.execute(
            "SELECT DISTINCT substr(day, 1, 7) FROM totals UNION SELECT period FROM periods"
        ).fetchall()
        return sorted(row[0] for row in rows)

    def schema_version(self) -> int:
        """The last migration applied to this store."""
        return int(self._db.execute("SELECT max(version) FROM schema_version").fetchone()[0])

    def stats(self) -> StoreStats:
        """Rows and bytes of the growing tables, and the oldest dedupe entry."""
        backend = "sqlite" if isinstance(self._db, sqlite3.Connection) else "postgresql"
        return StoreStats(
            backend=backend,
            schema_version=self.schema_version(),
            tables={table: self._table_stats(backend, table) for table in self.stats_tables},
            uploads_by_status=self.status_counts(),
            oldest_seen_at=self._oldest_seen_at(),
        )

    def _table_stats(self, backend: str, table: str) -> TableStats:
        (rows,) = self._db.execute(f"SELECT count(*) FROM {table}").fetchone()
        (size,) = self._db.execute(TABLE_BYTES_SQL[backend], (table,)).fetchone()
        return TableStats(rows=rows, bytes=size)

    def _oldest_seen_at(self) -> int | None:
        """When the oldest remembered eventId was first seen (epoch seconds)."""
        (oldest,) = self._db.execute("SELECT min(seen_at) FROM seen_events").fetchone()
        return int(oldest) if oldest is not None else None

    def _prune_settled(self, db: SqlConnection, cutoff_s: int) -> None:
        """Forget the settled rows of uploads that finished before `cutoff_s` (epoch seconds).

        They make redeliveries of those uploads' duplicates and dead letters no-ops; past the
        dedupe window an eventId sent again counts again anyway, so they go with it.
        """
        for table in ("settled_rows", "conflicts"):
            db.execute(
                f"DELETE FROM {table} WHERE upload_ref IN"
                " (SELECT reference FROM uploads WHERE finished_at < ?)",
                (utc_timestamp(cutoff_s),),
            )

    def status_counts(self) -> dict[str, int]:
        """How many uploads are in each status."""
        rows = self._db.execute("SELECT status, count(*) FROM uploads GROUP BY status")
        return dict(rows.fetchall())

    def reject_upload(self, reference: str, summary: UploadSummary) -> None:
        """Strict mode found errors (or the file was unreadable): Error, nothing ingested."""
        self._db.execute(
            "UPDATE uploads SET status = 'Error', records = ?, rejected_rows = ?, errors = ?,"
            " error_total = ?, expected = 0, finished_at = ? WHERE reference = ?",
            (summary.records, summary.rejected_rows, json.dumps(summary.errors),
             summary.error_total, utc_now(), reference),
        )  # fmt: skip

    def mark_published(self, reference: str, summary: UploadSummary) -> bool:
        """Every event was acknowledged by the broker; return True if that made it Done."""
        self._db.execute(
            "UPDATE uploads SET records = ?, expected = ?, rejected_rows = ?, errors = ?,"
            " error_total = ?, assigned_ids = ? WHERE reference = ?",
            (summary.records, summary.published, summary.rejected_rows,
             json.dumps(summary.errors), summary.error_total, summary.assigned_ids, reference),
        )  # fmt: skip
        return bool(self._finish_if_complete(self._db, [reference]))

    def _finish_if_complete(self, db: SqlConnection, references: list[str]) -> list[str]:
        """Mark Done the uploads whose every published event has been processed."""
        finished = []
        now = utc_now()
        for reference in references:
            cursor = db.execute(
                "UPDATE uploads SET status = 'Done', finished_at = ? WHERE reference = ?"
                " AND status = 'Processing' AND expected IS NOT NULL"
                " AND accepted + duplicates + dead_lettered >= expected",
                (now, reference),
            )
            if cursor.rowcount:
                finished.append(reference)
        return finished
