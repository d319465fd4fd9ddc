"""The check of each kind of cell a usage row holds, and the patterns and limits they apply.

Each check takes a raw cell (text; a decoded event's bool for `billable`) and returns its
normalised value, or raises `PydanticCustomError(code, message)`: `code` is the stable
reason (a metric label), the message is the one people read. `schemas.cell_types` makes
them pydantic field types; the frame validator (`schemas.validation`) reuses the patterns
and limits as polars regular expressions, and its tests hold them to `re.fullmatch`. Written
twice, here and in C (`schemas/_event_dates.c`), is the calendar check.

The patterns are unanchored: Python applies them with `re.fullmatch`, the frame validator
anchors them at both ends of the text (Python's `$` would also match before a trailing
newline; the regular expressions of polars do not). They spell digits
`[0-9]`, since Python's `\\d` also matches other scripts' digits, such as "١".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Final, Self, get_args

from pydantic_core import PydanticCustomError

from meterpipe.format_names import FormatName
from schemas.currencies import CURRENCIES

__all__ = [
    "BOOLEAN_PATTERN",
    "CURRENCY_PATTERN",
    "DATETIME_PATTERN",
    "DECIMAL_PATTERN",
    "DESCRIPTION_MAX_CHARS",
    "EVENT_ID_MAX_CHARS",
    "REFERENCE_MAX_CHARS",
    "SOURCE_FORMATS",
    "UNIT_MAX_CHARS",
    "UUID_PATTERN",
    "ExactDecimal",
    "check_boolean",
    "check_currency",
    "check_decimal",
    "check_event_date",
    "check_length",
    "check_source_format",
    "check_uuid",
]

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


def check_uuid(value: object) -> str:
    """A UUID in any letter case, as lower case."""
    if isinstance(value, str) and _UUID.fullmatch(value):
        return value.lower()
    raise PydanticCustomError(
        "invalid_uuid", "must be a UUID like 123e4567-e89b-12d3-a456-426614174000"
    )


def check_length(max_chars: int) -> Callable[[object], object]:
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


def check_decimal(value: object) -> ExactDecimal:
    """A plain decimal >= 0, kept exactly as written."""
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        return ExactDecimal(value)
    raise PydanticCustomError(
        "invalid_decimal",
        "must be a plain decimal >= 0 like 12.5: up to 20 digits, then optionally a point"
        " and up to 12 digits; no sign, exponent or spaces",
    )


def check_currency(value: object) -> str:
    """An active ISO 4217 code in any letter case, as upper case."""
    if isinstance(value, str) and _CURRENCY.fullmatch(value) and value.upper() in CURRENCIES:
        return value.upper()
    raise PydanticCustomError(
        "invalid_currency", "must be an active ISO 4217 currency code such as USD or EUR"
    )


def check_event_date(value: object) -> str:
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


def check_source_format(value: object) -> str:
    """The name of a format whose rules meterpipe knows."""
    if value in SOURCE_FORMATS:
        return str(value)
    raise PydanticCustomError("invalid_source_format", "must be appdirect or solvimon")


def check_boolean(value: object) -> bool:
    """true or false in any letter case; a bool (from a decoded event) as it is."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and _BOOLEAN.fullmatch(value):
        return value.lower() == "true"
    raise PydanticCustomError("invalid_boolean", "must be true or false")
