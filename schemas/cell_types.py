"""The pydantic field types of usage rows and events, each built from its cell check.

A required cell that is empty fails with reason `required`; an optional one becomes None.
Amounts keep the exact text they were read from (`ExactDecimal`) and serialise as it, the
Avro contract's decimal strings. The record models (`schemas.model`) are made of these, and
`producers.solvimon` explains Solvimon rows with the public ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from pydantic import (
    AfterValidator,
    BeforeValidator,
    PlainSerializer,
    PlainValidator,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError

from schemas.cell_checks import (
    DESCRIPTION_MAX_CHARS,
    EVENT_ID_MAX_CHARS,
    REFERENCE_MAX_CHARS,
    UNIT_MAX_CHARS,
    ExactDecimal,
    check_boolean,
    check_currency,
    check_decimal,
    check_event_date,
    check_length,
    check_source_format,
    check_uuid,
)

__all__ = [
    "Amount",
    "Billable",
    "Currency",
    "CustomUnit",
    "EventDate",
    "EventId",
    "OptionalAmount",
    "OptionalEventDate",
    "OptionalEventId",
    "OptionalReference",
    "OptionalText",
    "OptionalUuid",
    "Reference",
    "RequiredUnit",
    "SourceFormat",
    "Unit",
    "Uuid",
]

_T = TypeVar("_T")


def _is_empty(value: object) -> bool:
    """An empty cell, quoted or not, holds no value."""
    return value is None or value == ""


def _required(check: Callable[[object], _T]) -> Callable[[object], _T]:
    """Wrap `check` so an empty cell fails with reason `required`."""

    def check_required(value: object) -> _T:
        if _is_empty(value):
            raise PydanticCustomError("required", "a value is required")
        return check(value)

    return check_required


def _optional(check: Callable[[object], _T]) -> Callable[[object], _T | None]:
    """Wrap `check` so an empty cell becomes None."""

    def check_optional(value: object) -> _T | None:
        return None if _is_empty(value) else check(value)

    return check_optional


def _require_a_unit(custom_unit: str | None, info: ValidationInfo) -> str | None:
    """At least one of the units is given.

    Checked on customUnit because pricingUnit has been validated by then; one that failed its
    own check is missing from `info.data` and was given, so it does not count as absent.
    """
    pricing_unit_absent = "pricing_unit" in info.data and info.data["pricing_unit"] is None
    if custom_unit is None and pricing_unit_absent:
        raise PydanticCustomError("unit_required", "pricingUnit or customUnit is required")
    return custom_unit


def _decimal_text(value: ExactDecimal) -> str:
    """Amounts serialise as their exact text, the Avro contract's decimal strings."""
    return value.text


_AS_TEXT = PlainSerializer(_decimal_text, return_type=str, when_used="unless-none")

# Plain validators for amounts: a before-validator's result would be re-made a plain Decimal.
Amount = Annotated[ExactDecimal, PlainValidator(_required(check_decimal)), _AS_TEXT]
OptionalAmount = Annotated[ExactDecimal | None, PlainValidator(_optional(check_decimal)), _AS_TEXT]
Uuid = Annotated[str, BeforeValidator(_required(check_uuid))]
OptionalUuid = Annotated[str | None, BeforeValidator(_optional(check_uuid))]
Unit = Annotated[str | None, BeforeValidator(_optional(check_length(UNIT_MAX_CHARS)))]
CustomUnit = Annotated[Unit, AfterValidator(_require_a_unit)]
RequiredUnit = Annotated[str, BeforeValidator(_required(check_length(UNIT_MAX_CHARS)))]
Reference = Annotated[str, BeforeValidator(_required(check_length(REFERENCE_MAX_CHARS)))]
OptionalReference = Annotated[
    str | None, BeforeValidator(_optional(check_length(REFERENCE_MAX_CHARS)))
]
OptionalText = Annotated[
    str | None, BeforeValidator(_optional(check_length(DESCRIPTION_MAX_CHARS)))
]
Currency = Annotated[str | None, BeforeValidator(_optional(check_currency))]
EventDate = Annotated[str, BeforeValidator(_required(check_event_date))]
OptionalEventDate = Annotated[str | None, BeforeValidator(_optional(check_event_date))]
EventId = Annotated[str, BeforeValidator(_required(check_length(EVENT_ID_MAX_CHARS)))]
OptionalEventId = Annotated[
    str | None, BeforeValidator(_optional(check_length(EVENT_ID_MAX_CHARS)))
]
Billable = Annotated[bool, BeforeValidator(_required(check_boolean))]
SourceFormat = Annotated[str, BeforeValidator(check_source_format)]
