"""Plain values the store takes and returns besides the upload records (`schemas.uploads`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # frames only in annotations: reading the store never loads polars
    import polars as pl

__all__ = [
    "BatchOutcome",
    "BatchStats",
    "ConflictRecord",
    "StoredOffset",
    "TotalRow",
]


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
