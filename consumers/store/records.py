"""Plain values the store takes and returns, shared by producers, consumers and the CLI."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import polars as pl

__all__ = [
    "BatchOutcome",
    "BatchStats",
    "ConflictRecord",
    "StoredOffset",
    "TotalRow",
    "UploadRecord",
    "UploadStatus",
    "UploadSummary",
    "utc_now",
]

UploadStatus = Literal["Processing", "Error", "Done"]


def utc_now() -> str:
    """Now as an RFC 3339 UTC string, the form every stored timestamp takes."""
    return utc_timestamp(datetime.now(UTC).timestamp())


def utc_timestamp(epoch_s: float) -> str:
    """An epoch time in the stored form, so stored timestamps compare as strings."""
    moment = datetime.fromtimestamp(epoch_s, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class UploadRecord:
    """One upload and its progress; `expected` is None until every event was acknowledged."""

    reference: str
    name: str
    upload_key: str
    status: UploadStatus = "Processing"
    description: str | None = None
    records: int = 0
    expected: int | None = None
    accepted: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    rejected_rows: int = 0
    assigned_ids: int = 0
    uploaded_at: str = field(default_factory=utc_now)
    finished_at: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_total: int = 0
    source_path: str | None = None
    duplicate_of: str | None = None
    conflicts: int = 0

    def to_json(self) -> dict[str, Any]:
        """The stable JSON object of `meterpipe uploads --json`."""
        return {
            "reference": self.reference,
            "name": self.name,
            "description": self.description,
            "status": self.status,
            "records": self.records,
            "accepted": self.accepted,
            "rejected": self.rejected_rows + self.dead_lettered,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "eventIdsAssigned": self.assigned_ids,
            "uploadedAt": self.uploaded_at,
            "finishedAt": self.finished_at,
            "errorCount": self.error_total,
            "duplicateOf": self.duplicate_of,
            "errors": self.errors,
        }

    def errors_json(self) -> str:
        """The capped error list as stored."""
        return json.dumps(self.errors)


@dataclass(frozen=True)
class ConflictRecord:
    """A duplicate of an upload whose content differs from its eventId's first arrival.

    Positions are Kafka positions in the events topic (`consumers.batch.kafka_position`);
    `first_position` is None when the first arrival's row left this meter value empty.
    `values` holds this event's compared fields as it sent them.
    """

    event_id: str
    row_number: int
    first_upload: str | None
    first_row_number: int | None
    first_position: int | None
    position: int
    values: dict[str, Any] | None


@dataclass(frozen=True)
class UploadSummary:
    """What reading and publishing an upload found, recorded when publishing ends."""

    records: int
    published: int
    rejected_rows: int
    errors: list[dict[str, Any]]
    error_total: int
    assigned_ids: int


@dataclass(frozen=True)
class StoredOffset:
    """Where a partition's processing stands, and which log that position belongs to."""

    log_id: str
    next_offset: int


@dataclass(frozen=True)
class BatchOutcome:
    """Everything one consumed batch changes, applied in a single store transaction.

    `events` are valid decoded events (eventId, uploadRef, rowNumber, accountId,
    pricingUnit, customUnit, quantity, billable, day); `dead_lettered` holds the
    provenance (uploadRef, rowNumber) of events sent to the dead-letter topic;
    `offsets` maps partition -> (position the batch started from, next offset).
    Events may carry `digest` and `position` (see `consumers.batch.PreparedBatch`), and
    `compared` their compared fields: without them no conflict is found.
    """

    topic: str
    log_id: str
    events: pl.DataFrame
    dead_lettered: pl.DataFrame
    offsets: dict[int, tuple[StoredOffset | None, int]]
    compared: pl.DataFrame | None = None


@dataclass(frozen=True)
class BatchStats:
    """What a committed batch did."""

    accepted: int
    duplicates: int
    redelivered: int
    dead_lettered: int
    finished_uploads: list[str]
    conflicts: int = 0  # of the duplicates, those whose content differs from the first arrival


@dataclass(frozen=True)
class TotalRow:
    """Usage of one account in one unit, summed over the days asked for."""

    account_id: str
    pricing_unit: str | None
    custom_unit: str | None
    events: int
    quantity: str
    billable_quantity: str

    def to_json(self) -> dict[str, Any]:
        """The stable JSON object of `meterpipe totals --json`."""
        return {
            "accountId": self.account_id,
            "pricingUnit": self.pricing_unit,
            "customUnit": self.custom_unit,
            "events": self.events,
            "quantity": self.quantity,
            "billableQuantity": self.billable_quantity,
        }
