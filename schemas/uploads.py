"""An upload's record: its identity, status and progress, as every side reads and writes it.

Producers create and finish uploads, consumers count their events, the CLI and the HTTP
API show them: the record and its JSON form are part of the contract, defined once here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = ["UploadRecord", "UploadStatus", "UploadSummary", "utc_now", "utc_timestamp"]

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
class UploadSummary:
    """What reading and publishing an upload found, recorded when publishing ends."""

    records: int
    published: int
    rejected_rows: int
    errors: list[dict[str, Any]]
    error_total: int
    assigned_ids: int
