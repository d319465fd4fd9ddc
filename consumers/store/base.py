"""What a store backend offers, one small protocol per concern.

`StoreLedger` is all of them but the consumer's batch path: what commands that only read or
keep records open. `TotalsStore` adds the batch path; both backends implement every method
of it. Only SQLite folds (`TotalsFolder`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from consumers.store.keys import ApiKey
from consumers.store.records import BatchOutcome, BatchStats, ConflictRecord, StoredOffset
from consumers.store.stats import StoreStats
from schemas.uploads import UploadRecord, UploadStatus, UploadSummary

__all__ = [
    "BatchWriter",
    "KeyRing",
    "PeriodBook",
    "StoreLedger",
    "StoreMaintenance",
    "TotalsFolder",
    "TotalsReader",
    "TotalsStore",
    "UploadLedger",
]


class BatchWriter(Protocol):
    """The consumer's side: where each partition stands, one batch applied atomically, and
    the dedupe state those batches keep, pruned to its retention window."""

    def load_offsets(self, topic: str) -> dict[int, StoredOffset]:
        """Every stored position of `topic`, by partition."""

    def apply_batch(self, outcome: BatchOutcome) -> BatchStats:
        """Commit one batch's effects atomically; raise StaleBatchError if it was fenced."""

    def prune_seen(self) -> int:
        """Forget eventIds older than the retention window; return how many."""


@runtime_checkable
class TotalsFolder(Protocol):
    """A store that appends each batch's totals as deltas and folds them later (SQLite)."""

    def fold_totals(self) -> int:
        """Move pending per-batch deltas into the totals table; return the rows touched.

        Readers always see pending deltas, so folding changes no answer, only its cost.
        """

    def start_fold(self) -> int:
        """Begin a fold in steps: combine the pending deltas into parts; return their rows."""

    def fold_part(self) -> int:
        """Fold one combined part into the totals table; return its rows (0: none waits)."""


class TotalsReader(Protocol):
    """Totals as the CLI and the HTTP API read them."""

    def total_rows(
        self, account: str | None, unit: str | None, period: str | None
    ) -> Sequence[tuple[Any, ...]]:
        """Per-day rows (account, pricing, custom, events, q_hi, q_lo, b_hi, b_lo)."""


class UploadLedger(Protocol):
    """Upload records: created by producers, advanced by consumers, read by everyone."""

    def create_upload(self, upload: UploadRecord) -> None:
        """Record a new upload in status Processing."""

    def record_upload_options(
        self, reference: str, skip_invalid: bool | None, file_format: str | None
    ) -> None:
        """Keep the options an upload was sent with (None: the settings decide)."""

    def upload_options(self, reference: str) -> tuple[bool | None, str | None]:
        """(skipInvalid, format) an upload was sent with; (None, None) if none were kept."""

    def find_upload(self, reference: str) -> UploadRecord | None:
        """One upload by reference."""

    def list_conflicts(self, reference: str) -> list[ConflictRecord]:
        """The conflicts an upload's duplicates raised, in row order."""

    def list_uploads(self, status: UploadStatus | None = None) -> list[UploadRecord]:
        """Uploads, newest first, optionally of one status."""

    def list_uploads_page(
        self, status: UploadStatus | None, limit: int, after: tuple[str, str] | None = None
    ) -> list[UploadRecord]:
        """At most `limit` uploads in `list_uploads` order, after (uploadedAt, reference)."""

    def find_ingested(self, upload_key: str, other_than: str) -> UploadRecord | None:
        """The earliest other upload of the same bytes that was (or is being) ingested."""

    def mark_duplicate(self, reference: str, of: str, records: int) -> None:
        """The same bytes were ingested before as `of`: Done, nothing ingested."""

    def reject_upload(self, reference: str, summary: UploadSummary) -> None:
        """Strict mode found errors (or the file was unreadable): Error, nothing ingested."""

    def mark_published(self, reference: str, summary: UploadSummary) -> bool:
        """Every event was acknowledged by the broker; return True if that made it Done."""

    def status_counts(self) -> dict[str, int]:
        """How many uploads are in each status."""


class PeriodBook(Protocol):
    """The billing periods operators close, hold or reopen."""

    def period_states(self) -> dict[str, str]:
        """Every state an operator set, by `YYYY-MM` period."""

    def set_period_state(self, period: str, state: str) -> None:
        """Record an operator's close, hold or reopen of a period."""

    def known_periods(self) -> list[str]:
        """Periods with usage or with a state set, oldest first."""


class KeyRing(Protocol):
    """The HTTP API's keys, kept as hashes."""

    def create_key(self, name: str, key_hash: str, scopes: Sequence[str]) -> bool:
        """Store a new API key by its hash; False if the name is taken."""

    def find_key(self, key_hash: str) -> ApiKey | None:
        """The API key whose hash this is, or None."""

    def list_keys(self) -> list[ApiKey]:
        """Every API key, by name."""

    def revoke_key(self, name: str) -> bool:
        """Delete an API key; False if no key has that name."""

    def key_count(self) -> int:
        """How many API keys exist."""


class StoreMaintenance(Protocol):
    """Opening, measuring and pruning the store."""

    def close(self) -> None:
        """Release the connection."""

    def schema_version(self) -> int:
        """The last migration applied to this store."""

    def stats(self) -> StoreStats:
        """Rows and bytes of the growing tables, and the oldest dedupe entry."""


class StoreLedger(TotalsReader, UploadLedger, PeriodBook, KeyRing, StoreMaintenance, Protocol):
    """Totals as read, upload records, periods and keys: `SqliteLedger` and `PostgresLedger`,
    which need no dataframe library, and the full stores built on them."""


class TotalsStore(BatchWriter, StoreLedger, Protocol):
    """Totals, dedupe state, offsets, upload records, periods and keys: `SqliteStore` and
    `PostgresStore`. Whether a store also folds is asked with `isinstance(store, TotalsFolder)`."""
