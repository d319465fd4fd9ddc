"""What `meterpipe store stats` reports: how big the store is and how old its dedupe state is.

Dedupe state grows with the events of one retention window, so these figures are what an
operator sizes the store from and checks pruning against.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["STATS_TABLES", "StoreStats", "TableStats"]

# The tables that grow with usage; offsets and periods stay a handful of rows.
STATS_TABLES = ("seen_events", "settled_rows", "totals", "uploads")


@dataclass(frozen=True)
class TableStats:
    """One table's rows and its bytes on disk with its indexes (None: not cheap to know)."""

    rows: int
    bytes: int | None


@dataclass(frozen=True)
class StoreStats:
    """Sizes of the store's growing tables, upload counts and the oldest dedupe entry."""

    backend: str
    schema_version: int
    tables: dict[str, TableStats]
    uploads_by_status: dict[str, int]
    oldest_seen_at: int | None

    def to_json(self, now: float, retention_days: int) -> dict[str, Any]:
        """The stable JSON object of `meterpipe store stats --json`."""
        seen = self.tables["seen_events"]
        per_event = seen.bytes / seen.rows if seen.bytes is not None and seen.rows else None
        oldest = self.oldest_seen_at
        return {
            "backend": self.backend,
            "schemaVersion": self.schema_version,
            "tables": {
                name: {"rows": table.rows, "bytes": table.bytes}
                for name, table in self.tables.items()
            },
            "uploadsByStatus": self.uploads_by_status,
            "dedupe": {
                "entries": seen.rows,
                "bytesPerEntry": round(per_event, 1) if per_event is not None else None,
                "oldestEntry": (
                    datetime.fromtimestamp(oldest, UTC).isoformat().replace("+00:00", "Z")
                    if oldest is not None
                    else None
                ),
                "oldestAgeSeconds": int(now) - oldest if oldest is not None else None,
                "retentionDays": retention_days,
            },
        }
