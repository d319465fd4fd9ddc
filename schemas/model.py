"""The rules of a usage row, written once, as pydantic models.

`UsageRow` holds the rules of an AppDirect row, `SolvimonEvent` those of an event made from
a Solvimon row's meter value, and `UsageEvent` mirrors the published Avro record of either.
Rows are checked in two places: one at a time here (error reports, consumers re-checking an
event) and a whole frame at a time in `schemas.validation`, which must agree with this module
row for row; a differential test compares the two. The models are made of the field types
of `schemas.cell_types`, each a cell check of `schemas.cell_checks`, whose failures carry
the stable reason code and the message people read.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Final

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails, PydanticCustomError

from schemas.cell_checks import check_source_format
from schemas.cell_types import (
    Amount,
    Billable,
    Currency,
    CustomUnit,
    EventDate,
    EventId,
    OptionalAmount,
    OptionalEventId,
    OptionalReference,
    OptionalText,
    OptionalUuid,
    Reference,
    RequiredUnit,
    SourceFormat,
    Unit,
    Uuid,
)
from schemas.row_errors import RowError

__all__ = [
    "COLUMNS",
    "SOLVIMON_EVENT_COLUMNS",
    "SolvimonEvent",
    "UsageEvent",
    "UsageRow",
    "explain_event",
    "explain_row",
]

COLUMNS: Final = (
    "accountId",
    "developerId",
    "pricingUnit",
    "customUnit",
    "quantity",
    "unitPrice",
    "description",
    "currency",
    "eventDate",
    "eventId",
    "billable",
)
# The fields a Solvimon event's rules govern; the others are null or provenance.
SOLVIMON_EVENT_COLUMNS: Final = (
    "accountId",
    "pricingUnit",
    "quantity",
    "eventDate",
    "eventId",
    "billable",
)

# Shared by the record models; `frozen=True` is spelled in each, where mypy's plugin sees it.
_RECORD_CONFIG = ConfigDict(
    alias_generator=to_camel,
    validate_by_name=True,
    validate_by_alias=True,
    serialize_by_alias=True,
    strict=True,
    extra="forbid",
    validate_default=True,
)


class UsageRow(BaseModel):
    """One row of a metered-usage file, validated and normalised.

    Built from the raw cells (text; empty or None for a blank cell) keyed by the CSV names,
    which are also the Avro names, or by the snake_case attribute names. UUIDs come out in
    lower case, the currency in upper case, `billable` as a bool, quantity and unitPrice as
    `ExactDecimal`s; eventDate stays the given text, and `event_datetime` parses it.
    """

    model_config = ConfigDict(frozen=True, **_RECORD_CONFIG)

    account_id: Uuid
    developer_id: Uuid
    pricing_unit: Unit = None
    custom_unit: CustomUnit = None
    quantity: Amount
    unit_price: OptionalAmount = None
    description: OptionalText = None
    currency: Currency = None
    event_date: EventDate
    event_id: OptionalEventId = None
    billable: Billable

    @property
    def event_datetime(self) -> datetime:
        """eventDate as an aware datetime (fraction digits past microseconds are dropped)."""
        return datetime.fromisoformat(self.event_date)


class SolvimonEvent(BaseModel):
    """An event made from one meter value of a Solvimon row, as consumers re-check it.

    The customer reference is the account as given (not a UUID), the meter is the
    pricingUnit; the other fields follow the AppDirect rules.
    """

    model_config = ConfigDict(frozen=True, **_RECORD_CONFIG)

    account_id: Reference
    pricing_unit: RequiredUnit
    quantity: Amount
    event_date: EventDate
    event_id: EventId
    billable: Billable


class UsageEvent(BaseModel):
    """A usage event as published, from either format: its eventId is certain, its origin told.

    Field for field the record of the current schema (`schemas.versions`), so `model_dump()`
    is the Avro record (amounts as their exact text). Only what holds for every format is
    checked here: an account is any reference (AppDirect's UUIDs are references too) and
    developerId may be null. `explain_event` applies the full rules of the event's sourceFormat.
    """

    model_config = ConfigDict(frozen=True, **_RECORD_CONFIG)

    account_id: Reference
    developer_id: OptionalUuid = None
    pricing_unit: Unit = None
    custom_unit: CustomUnit = None
    quantity: Amount
    unit_price: OptionalAmount = None
    description: OptionalText = None
    currency: Currency = None
    event_date: EventDate
    event_id: EventId
    billable: Billable
    upload_ref: str | None = None
    row_number: int | None = None
    event_id_assigned: bool = False
    source_format: SourceFormat = "appdirect"
    subscription_ref: OptionalReference = None
    properties: str | None = None


def explain_row(cells: Mapping[str, str | None], row: int) -> list[RowError]:
    """Say why a raw row is invalid: one RowError per failing column, in column order.

    `cells` maps column names to raw cells; a missing name counts as an empty cell and other
    names are ignored. An empty list means the row is valid. This is the authority for error
    messages: the vectorised validator calls it for the rows it rejects.
    """
    return _explain(UsageRow, COLUMNS, cells, row)


def explain_event(cells: Mapping[str, str | None], row: int) -> list[RowError]:
    """Say why a decoded event is invalid, by the rules of its sourceFormat (see explain_row)."""
    source_format = cells.get("sourceFormat")
    if source_format == "solvimon":
        return _explain(SolvimonEvent, SOLVIMON_EVENT_COLUMNS, cells, row)
    try:
        check_source_format(source_format)
    except PydanticCustomError as exc:
        return [RowError(row, "sourceFormat", source_format, exc.type, exc.message())]
    return _explain(UsageRow, COLUMNS, cells, row)


def _explain(
    model: type[BaseModel], columns: tuple[str, ...], cells: Mapping[str, str | None], row: int
) -> list[RowError]:
    """The RowErrors of `model` validating `columns` of `cells`, in column order."""
    raw = {column: cells.get(column) for column in columns}
    try:
        model.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        return [RowError(row, col, raw[col], e["type"], e["msg"]) for col, e in _by_column(errors)]
    return []


def _by_column(errors: list[ErrorDetails]) -> list[tuple[str, ErrorDetails]]:
    """Pair each error with its column.

    The unit rule is checked on customUnit but reported on pricingUnit, the unit a file is
    expected to fill.
    """
    return [
        ("pricingUnit" if error["type"] == "unit_required" else str(error["loc"][0]), error)
        for error in errors
    ]
