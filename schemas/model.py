"""The rules of a usage row, written once, as pydantic models.

`UsageRow` holds the rules of an AppDirect row, `SolvimonEvent` those of an event made from
a Solvimon row's meter value, and `UsageEvent` mirrors the published Avro record of either.
Rows are checked in two places: one at a time here (error reports, consumers re-checking an
event) and a whole frame at a time in `schemas.validation`, which must agree with this module
row for row. So the rules live here: the regex patterns and length limits are constants the
frame validator reuses, and every failure raises `PydanticCustomError(code, message)`, whose
`type` is the stable reason code (a metric label) and whose message is the one people read.
Written twice are the calendar check and the four fixed-shape patterns, which the frame
validator matches in C (`schemas.cell_patterns`, keyed by these very pattern strings); tests
hold the C matchers to `re.fullmatch`, and a differential test compares the two validators.

The patterns are unanchored: Python applies them with `re.fullmatch`, the C matchers to the
whole text (Python's `$` would also match before a trailing newline). They spell digits
`[0-9]`, since Python's `\\d` also matches other scripts' digits, such as "١".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Final, Self, TypeVar, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    ValidationInfo,
)
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails, PydanticCustomError

from meterpipe.settings import FormatName
from schemas.currencies import CURRENCIES
from schemas.row_errors import RowError

__all__ = [
    "BOOLEAN_PATTERN",
    "COLUMNS",
    "CURRENCY_PATTERN",
    "DATETIME_PATTERN",
    "DECIMAL_PATTERN",
    "DESCRIPTION_MAX_CHARS",
    "EVENT_ID_MAX_CHARS",
    "REFERENCE_MAX_CHARS",
    "SOLVIMON_EVENT_COLUMNS",
    "SOURCE_FORMATS",
    "UNIT_MAX_CHARS",
    "UUID_PATTERN",
    "ExactDecimal",
    "OptionalAmount",
    "OptionalEventDate",
    "OptionalReference",
    "OptionalText",
    "Reference",
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
SOURCE_FORMATS: Final = get_args(FormatName)

UUID_PATTERN: Final = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
DECIMAL_PATTERN: Final = r"[0-9]{1,20}(?:\.[0-9]{1,12})?"
DATETIME_PATTERN: Final = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})"
)
# ASCII letters before upper-casing: Python and Rust both upper-case "uſd" to "USD".
CURRENCY_PATTERN: Final = "[A-Za-z]{3}"
# No case-insensitive flag: under it both engines let "ſ" (long s) match "s".
BOOLEAN_PATTERN: Final = "[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]"

UNIT_MAX_CHARS: Final = 128
DESCRIPTION_MAX_CHARS: Final = 1024
EVENT_ID_MAX_CHARS: Final = 128
REFERENCE_MAX_CHARS: Final = 128

_UUID = re.compile(UUID_PATTERN)
_DECIMAL = re.compile(DECIMAL_PATTERN)
_DATETIME = re.compile(DATETIME_PATTERN)
_CURRENCY = re.compile(CURRENCY_PATTERN)
_BOOLEAN = re.compile(BOOLEAN_PATTERN)

_T = TypeVar("_T")


class ExactDecimal(Decimal):
    """A Decimal that keeps the exact text it was read from, in `text`.

    Amounts travel as that text: a plain Decimal would turn "007.50" into "7.50" and
    "0.0000001" into "1E-7". Arithmetic on it gives plain Decimals.
    """

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> Self:
        """Parse `text`, which the caller has checked against DECIMAL_PATTERN."""
        value = super().__new__(cls, text)
        value.text = text
        return value

    def __repr__(self) -> str:
        """Show the exact text, which is what the value stands for."""
        return f"ExactDecimal({self.text!r})"

    def __reduce__(self) -> tuple[type[Self], tuple[str]]:
        """Pickle from the exact text, not from the normalised str()."""
        return (type(self), (self.text,))


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


def _uuid(value: object) -> str:
    """A UUID in any letter case, as lower case."""
    if isinstance(value, str) and _UUID.fullmatch(value):
        return value.lower()
    raise PydanticCustomError(
        "invalid_uuid", "must be a UUID like 123e4567-e89b-12d3-a456-426614174000"
    )


def _at_most(max_chars: int) -> Callable[[object], object]:
    """A check that free text has at most `max_chars` characters (pydantic checks it is text)."""

    def check_length(value: object) -> object:
        if isinstance(value, str) and len(value) > max_chars:
            raise PydanticCustomError(
                "too_long",
                "must be at most {max_chars} characters, not {length}",
                {"max_chars": max_chars, "length": len(value)},
            )
        return value

    return check_length


def _decimal(value: object) -> ExactDecimal:
    """A plain decimal >= 0, kept exactly as written."""
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        return ExactDecimal(value)
    raise PydanticCustomError(
        "invalid_decimal",
        "must be a plain decimal >= 0 like 12.5: up to 20 digits, then optionally a point"
        " and up to 12 digits; no sign, exponent or spaces",
    )


def _currency(value: object) -> str:
    """An active ISO 4217 code in any letter case, as upper case."""
    if isinstance(value, str) and _CURRENCY.fullmatch(value) and value.upper() in CURRENCIES:
        return value.upper()
    raise PydanticCustomError(
        "invalid_currency", "must be an active ISO 4217 currency code such as USD or EUR"
    )


def _event_date(value: object) -> str:
    """An RFC 3339 date-time with an offset, naming a real instant; kept as written."""
    if not (isinstance(value, str) and _DATETIME.fullmatch(value)):
        raise PydanticCustomError(
            "invalid_datetime",
            "must look like 2026-07-16T19:20:30+01:00: YYYY-MM-DDThh:mm:ss,"
            " an optional fraction, then Z or +hh:mm or -hh:mm",
        )
    if not _is_real_instant(value):
        raise PydanticCustomError(
            "invalid_datetime",
            "is not a real date and time: check the day of the month, that hours are"
            " 00-23 and minutes and seconds 00-59, in the time and in the offset",
        )
    return value


def _is_real_instant(text: str) -> bool:
    """Whether a DATETIME_PATTERN match names a real day and clock time, and a valid offset."""
    year, month, day = int(text[0:4]), int(text[5:7]), int(text[8:10])
    try:  # datetime rejects year 0, Feb 30, hour 24 and second 60
        datetime(year, month, day, int(text[11:13]), int(text[14:16]), int(text[17:19]))
    except ValueError:
        return False
    return text.endswith("Z") or (int(text[-5:-3]) <= 23 and int(text[-2:]) <= 59)


def _source_format(value: object) -> str:
    """The name of a format whose rules meterpipe knows."""
    if value in SOURCE_FORMATS:
        return str(value)
    raise PydanticCustomError("invalid_source_format", "must be appdirect or solvimon")


def _boolean(value: object) -> bool:
    """true or false in any letter case; a bool (from a decoded event) as it is."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and _BOOLEAN.fullmatch(value):
        return value.lower() == "true"
    raise PydanticCustomError("invalid_boolean", "must be true or false")


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
# The public cell types are shared with producers.solvimon, which explains Solvimon rows.
_Amount = Annotated[ExactDecimal, PlainValidator(_required(_decimal)), _AS_TEXT]
OptionalAmount = Annotated[ExactDecimal | None, PlainValidator(_optional(_decimal)), _AS_TEXT]
_Uuid = Annotated[str, BeforeValidator(_required(_uuid))]
_OptionalUuid = Annotated[str | None, BeforeValidator(_optional(_uuid))]
_Unit = Annotated[str | None, BeforeValidator(_optional(_at_most(UNIT_MAX_CHARS)))]
_CustomUnit = Annotated[_Unit, AfterValidator(_require_a_unit)]
_RequiredUnit = Annotated[str, BeforeValidator(_required(_at_most(UNIT_MAX_CHARS)))]
Reference = Annotated[str, BeforeValidator(_required(_at_most(REFERENCE_MAX_CHARS)))]
OptionalReference = Annotated[str | None, BeforeValidator(_optional(_at_most(REFERENCE_MAX_CHARS)))]
OptionalText = Annotated[str | None, BeforeValidator(_optional(_at_most(DESCRIPTION_MAX_CHARS)))]
_Currency = Annotated[str | None, BeforeValidator(_optional(_currency))]
_EventDate = Annotated[str, BeforeValidator(_required(_event_date))]
OptionalEventDate = Annotated[str | None, BeforeValidator(_optional(_event_date))]
_EventId = Annotated[str, BeforeValidator(_required(_at_most(EVENT_ID_MAX_CHARS)))]
_OptionalEventId = Annotated[str | None, BeforeValidator(_optional(_at_most(EVENT_ID_MAX_CHARS)))]
_Billable = Annotated[bool, BeforeValidator(_required(_boolean))]
_SourceFormat = Annotated[str, BeforeValidator(_source_format)]

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

    account_id: _Uuid
    developer_id: _Uuid
    pricing_unit: _Unit = None
    custom_unit: _CustomUnit = None
    quantity: _Amount
    unit_price: OptionalAmount = None
    description: OptionalText = None
    currency: _Currency = None
    event_date: _EventDate
    event_id: _OptionalEventId = None
    billable: _Billable

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
    pricing_unit: _RequiredUnit
    quantity: _Amount
    event_date: _EventDate
    event_id: _EventId
    billable: _Billable


class UsageEvent(BaseModel):
    """A usage event as published, from either format: its eventId is certain, its origin told.

    Field for field the record of the current schema (`schemas.versions`), so `model_dump()`
    is the Avro record (amounts as their exact text). Only what holds for every format is
    checked here: an account is any reference (AppDirect's UUIDs are references too) and
    developerId may be null. `explain_event` applies the full rules of the event's sourceFormat.
    """

    model_config = ConfigDict(frozen=True, **_RECORD_CONFIG)

    account_id: Reference
    developer_id: _OptionalUuid = None
    pricing_unit: _Unit = None
    custom_unit: _CustomUnit = None
    quantity: _Amount
    unit_price: OptionalAmount = None
    description: OptionalText = None
    currency: _Currency = None
    event_date: _EventDate
    event_id: _EventId
    billable: _Billable
    upload_ref: str | None = None
    row_number: int | None = None
    event_id_assigned: bool = False
    source_format: _SourceFormat = "appdirect"
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
        _source_format(source_format)
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
