"""The shapes of the API's JSON, for its OpenAPI document: the CLI's `--json` objects.

The routes build the objects with the same functions the CLI uses; these models describe
them (extra keys pass through unchanged).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["Period", "PeriodList", "TotalList", "TotalRow", "Upload", "UploadPage"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class RowError(_Open):
    """One bad cell: row (the header is row 1), column, value, reason, message."""

    row: int
    column: str
    value: str | None
    reason: str
    message: str


class Upload(_Open):
    """An upload, as `meterpipe uploads --json` prints it."""

    reference: str
    name: str
    description: str | None
    status: Literal["Processing", "Error", "Done"]
    records: int
    accepted: int
    rejected: int
    duplicates: int
    eventIdsAssigned: int
    uploadedAt: str
    finishedAt: str | None
    errorCount: int
    duplicateOf: str | None
    errors: list[RowError]


class UploadPage(BaseModel):
    """Uploads, newest first, and the cursor of the next page (null on the last)."""

    items: list[Upload]
    next: str | None


class TotalRow(_Open):
    """Usage of one account in one unit, quantities as exact decimal strings."""

    accountId: str
    pricingUnit: str | None
    customUnit: str | None
    events: int
    quantity: str
    billableQuantity: str


class TotalList(BaseModel):
    """Totals per account and unit."""

    items: list[TotalRow]


class Period(_Open):
    """A billing period (UTC month) and its state now."""

    period: str
    state: Literal["open", "grace", "hold", "closed"]
    end: str


class PeriodList(BaseModel):
    """Every period with usage or a state set, oldest first."""

    items: list[Period]
