"""Solvimon's usage upload file: one row, one event per meter value it fills.

Solvimon's template has four fixed columns, then one column per meter value reference
(quantities) and one per meter property reference (text), named in a TOML file:

    values = ["api_calls", "storage_gb"]
    properties = ["region"]

Each non-empty meter value of a row becomes one canonical event: the customer reference is
its account, the meter its pricingUnit, and the row's properties travel with it as JSON
text. The Event reference names the row's event as a whole: every meter value of the row
carries the UUIDv5 of the reference as its eventId, so consumers count the row once, and a
reference sent again, in any file and with any meter values, is a duplicate in whole (see
`schemas.provenance`). An empty Timestamp becomes the upload's ingestion time, so
publishing an upload again yields the very same events.
"""

from __future__ import annotations

import tomllib
import uuid
from pathlib import Path
from typing import Annotated, Any, Final, Self

import polars as pl
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from meterpipe.errors import ConfigError
from meterpipe.format_names import FormatName
from producers.event_ids import EVENT_ID_NAMESPACE, uuid5_texts
from schemas.cell_checks import (
    DECIMAL_PATTERN,
    DESCRIPTION_MAX_CHARS,
    REFERENCE_MAX_CHARS,
    UNIT_MAX_CHARS,
)
from schemas.cell_types import (
    OptionalAmount,
    OptionalEventDate,
    OptionalReference,
    OptionalText,
    Reference,
)
from schemas.codec import FIELD_NAMES
from schemas.provenance import EVENTS_PER_ROW
from schemas.uploads import UploadRecord, utc_now
from schemas.validation import (
    ROW_NUMBER,
    RowError,
    ValidationResult,
    breaks_event_date,
    breaks_pattern,
    too_long,
)

__all__ = [
    "FIXED_COLUMNS",
    "SOLVIMON_NAMESPACE",
    "MeterConfig",
    "SolvimonFormat",
    "load_meters",
]

CUSTOMER: Final = "Customer reference"
SUBSCRIPTION: Final = "Pricing plan subscription reference"
EVENT: Final = "Event reference"
TIMESTAMP: Final = "Timestamp"
FIXED_COLUMNS: Final = (CUSTOMER, SUBSCRIPTION, EVENT, TIMESTAMP)

# A namespace of its own: no Solvimon name can ever equal an AppDirect "<key>:<row>" name.
SOLVIMON_NAMESPACE: Final = uuid.uuid5(EVENT_ID_NAMESPACE, "solvimon")

_FIRST_ROW = "_firstRow"
_HASH = "_referenceHash"  # polars' hash: stable within a process, all one upload needs
_METER_NAME = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


def _meter_name(name: str) -> str:
    """A meter name is a CSV header, a pricingUnit and part of an eventId name: keep it plain."""
    if 0 < len(name) <= UNIT_MAX_CHARS and set(name) <= _METER_NAME and name[0].isalnum():
        return name
    raise PydanticCustomError(
        "invalid_meter_name",
        "{name} is not a meter name: use letters, digits, '_', '.' and '-' (up to"
        " {max_chars} characters, starting with a letter or digit)",
        {"name": repr(name), "max_chars": UNIT_MAX_CHARS},
    )


_MeterName = Annotated[str, AfterValidator(_meter_name)]


class MeterConfig(BaseModel):
    """The meters of the Solvimon template: the columns after the four fixed ones."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    values: tuple[_MeterName, ...] = Field(min_length=1, max_length=EVENTS_PER_ROW - 1)
    properties: tuple[_MeterName, ...] = ()

    @model_validator(mode="after")
    def _one_column_each(self) -> Self:
        """Every meter is a column of its own, named unlike any other (in any case).

        Event field names are taken too: rows and events share one frame on the way.
        """
        taken = {name.casefold(): f"the event field {name!r}" for name in FIELD_NAMES}
        taken |= {name.casefold(): f"the fixed column {name!r}" for name in FIXED_COLUMNS}
        for name in (*self.values, *self.properties):
            if name.casefold() in taken:
                raise PydanticCustomError(
                    "meter_clash",
                    "meter {name} clashes with {other}",
                    {"name": repr(name), "other": taken[name.casefold()]},
                )
            taken[name.casefold()] = f"meter {name!r}"
        return self


def load_meters(path: Path) -> MeterConfig:
    """Read the meters TOML file; ConfigError saying what is wrong with it."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read the meters file {path}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"the meters file {path} is not valid TOML: {exc}") from exc
    try:
        return MeterConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or 'meters'}: {error['msg']}"
            for error in exc.errors(include_url=False)
        )
        raise ConfigError(f"the meters file {path} is invalid: {problems}") from exc


class SolvimonFormat:
    """Solvimon's usage file, for one upload.

    An Event reference must be unique within the file, and a file comes in chunks: the
    instance remembers the references it has seen, so it reads one upload only
    (`producers.formats.available_formats` makes a fresh one for each).
    """

    name: FormatName = "solvimon"

    def __init__(self, meters: MeterConfig) -> None:
        self.meters = meters
        self.columns: tuple[str, ...] = (*FIXED_COLUMNS, *meters.values, *meters.properties)
        self._seen = pl.DataFrame(schema={_HASH: pl.UInt64, EVENT: pl.String, _FIRST_ROW: pl.Int64})
        self._cell_types = _cell_types(meters)
        self._read_at = utc_now()

    def validate(self, rows: pl.DataFrame, max_errors: int) -> ValidationResult:
        """Valid rows (empty cells as null) and the errors of the others, in row order.

        Valid rows also get an eventDate, as every format's do, for the rules that judge
        dates (billing periods): the Timestamp, or when it is empty the time the upload is
        being read. The event itself gets the upload's recorded time (see to_events).
        """
        empty_as_null = (pl.when(pl.col(c) != "").then(pl.col(c)).alias(c) for c in self.columns)
        reading_date = pl.col(TIMESTAMP).fill_null(pl.lit(self._read_at)).alias("eventDate")
        cells = self._with_first_rows(rows.with_columns(empty_as_null))
        invalid = cells.select(pl.any_horizontal(self._failures())).to_series()
        # Errors show the cells as written, an empty one as "" like AppDirect's.
        raw = rows.with_columns(cells.get_column(_FIRST_ROW))
        return ValidationResult(
            valid=cells.filter(~invalid).drop(_FIRST_ROW).with_columns(reading_date),
            errors=self._explain(raw.filter(invalid).head(max_errors)),
            invalid_rows=int(invalid.sum()),
        )

    def to_events(self, valid: pl.DataFrame, upload: UploadRecord) -> pl.DataFrame:
        """One event per non-empty meter value, in row then meter order."""
        values = list(self.meters.values)
        rows = valid.with_columns(
            self._properties_json().alias("properties"),
            pl.col(TIMESTAMP).fill_null(pl.lit(upload.uploaded_at)).alias("eventDate"),
        )
        index = [CUSTOMER, SUBSCRIPTION, EVENT, "eventDate", "properties", ROW_NUMBER]
        place = pl.col("pricingUnit").replace_strict(values, range(1, len(values) + 1))
        events = (
            rows.unpivot(values, index=index, variable_name="pricingUnit", value_name="quantity")
            .drop_nulls("quantity")
            .with_columns((pl.col(ROW_NUMBER) * EVENTS_PER_ROW + place).alias(ROW_NUMBER))
            .sort(ROW_NUMBER)
        )
        return events.with_columns(
            pl.col(CUSTOMER).alias("accountId"),
            _event_ids(events.select(EVENT)),
            pl.col(SUBSCRIPTION).alias("subscriptionRef"),
            *(pl.lit(None, pl.String).alias(name) for name in _NOT_IN_SOLVIMON),
            pl.lit(True).alias("billable"),
            pl.lit(upload.reference).alias("uploadRef"),
            pl.lit(False).alias("eventIdAssigned"),
            pl.lit(self.name).alias("sourceFormat"),
        ).select(FIELD_NAMES)

    def _with_first_rows(self, cells: pl.DataFrame) -> pl.DataFrame:
        """Add the earlier row of a repeated Event reference (_FIRST_ROW); remember new ones.

        Earlier chunks' references are matched by hash first, a cheap integer join even
        against millions of them, then by text, as hashes may collide.
        """
        cells = cells.with_columns(pl.col(EVENT).hash().alias(_HASH))
        earlier = self._seen.join(cells.select(_HASH), on=_HASH, how="semi")
        earlier = earlier.select(EVENT, pl.col(_FIRST_ROW).alias("_seenRow"))
        first_in_chunk = pl.col(ROW_NUMBER).min().over(EVENT)
        first = pl.coalesce("_seenRow", first_in_chunk)
        repeated = pl.col("_seenRow").is_not_null() | (first_in_chunk != pl.col(ROW_NUMBER))
        repeated = pl.col(EVENT).is_not_null() & repeated
        cells = (
            cells.join(earlier, on=EVENT, how="left", maintain_order="left")
            .with_columns(pl.when(repeated).then(first).alias(_FIRST_ROW))
            .drop("_seenRow")
        )
        self._remember(cells)
        return cells.drop(_HASH)

    def _remember(self, cells: pl.DataFrame) -> None:
        """Add the references `cells` use for the first time, with their row."""
        first_uses = cells.filter(pl.col(EVENT).is_not_null() & pl.col(_FIRST_ROW).is_null())
        new = first_uses.select(_HASH, EVENT, pl.col(ROW_NUMBER).alias(_FIRST_ROW))
        self._seen = pl.concat([self._seen, new], rechunk=False)

    def _failures(self) -> list[pl.Expr]:
        """One expression per rule, true where a row breaks it (the cell rules of _cell_types)."""
        values = self.meters.values
        return [
            pl.col(CUSTOMER).is_null() | too_long(CUSTOMER, REFERENCE_MAX_CHARS),
            too_long(SUBSCRIPTION, REFERENCE_MAX_CHARS),
            pl.col(EVENT).is_null() | too_long(EVENT, REFERENCE_MAX_CHARS),
            breaks_event_date(TIMESTAMP, required=False),
            *(breaks_pattern(name, DECIMAL_PATTERN, required=False) for name in values),
            *(too_long(name, DESCRIPTION_MAX_CHARS) for name in self.meters.properties),
            pl.all_horizontal(pl.col(name).is_null() for name in values),
            pl.col(_FIRST_ROW).is_not_null(),
        ]

    def _explain(self, invalid: pl.DataFrame) -> list[RowError]:
        """The RowErrors of invalid rows, in row order, with the pydantic types' messages."""
        return [error for record in invalid.iter_rows(named=True) for error in self._why(record)]

    def _why(self, record: dict[str, Any]) -> list[RowError]:
        """Every error of one row: bad cells, then a repeated reference, then no meter value."""
        row = record[ROW_NUMBER]
        errors = [
            RowError(row, column, record[column], error["type"], error["msg"])
            for column, cell_type in self._cell_types.items()
            for error in _cell_errors(cell_type, record[column])
        ]
        if record[_FIRST_ROW] is not None:
            message = f"repeats the Event reference of row {record[_FIRST_ROW]}; it must be unique"
            errors.append(RowError(row, EVENT, record[EVENT], "duplicate_reference", message))
        values = self.meters.values
        if not any(record[name] for name in values):
            message = f"at least one meter value is required ({', '.join(values)})"
            errors.append(RowError(row, values[0], None, "no_meter_value", message))
        return errors

    def _properties_json(self) -> pl.Expr:
        """The row's non-empty properties as a compact JSON object, keys sorted; null if none."""
        members = [
            # A one-field struct encodes as {"name":value}; its inside is one member.
            pl.when(pl.col(name).is_not_null()).then(
                pl.struct(name).struct.json_encode().str.slice(1).str.strip_suffix("}")
            )
            for name in sorted(self.meters.properties)
        ]
        if not members:
            return pl.lit(None, pl.String)
        body = pl.concat_str(members, separator=",", ignore_nulls=True)
        return pl.when(body != "").then(pl.concat_str([pl.lit("{"), body, pl.lit("}")]))


_NOT_IN_SOLVIMON = ("developerId", "customUnit", "unitPrice", "description", "currency")


def _cell_types(meters: MeterConfig) -> dict[str, TypeAdapter[Any]]:
    """The rule of each column, as the pydantic types the Avro contract's rules are made of."""
    reference: TypeAdapter[Any] = TypeAdapter(Reference)
    amount: TypeAdapter[Any] = TypeAdapter(OptionalAmount)
    text: TypeAdapter[Any] = TypeAdapter(OptionalText)
    return {
        CUSTOMER: reference,
        SUBSCRIPTION: TypeAdapter(OptionalReference),
        EVENT: reference,
        TIMESTAMP: TypeAdapter(OptionalEventDate),
        **dict.fromkeys(meters.values, amount),
        **dict.fromkeys(meters.properties, text),
    }


def _cell_errors(cell_type: TypeAdapter[Any], cell: str | None) -> list[ErrorDetails]:
    """The pydantic errors of one cell (none when it is valid)."""
    try:
        cell_type.validate_python(cell)
    except ValidationError as exc:
        return list(exc.errors(include_url=False))
    return []


def _event_ids(names: pl.DataFrame) -> pl.Series:
    """The eventIds of one-column `names` (Event references): UUIDv5 in SOLVIMON_NAMESPACE."""
    return uuid5_texts(SOLVIMON_NAMESPACE, names.to_series().cast(pl.Binary).to_list())
