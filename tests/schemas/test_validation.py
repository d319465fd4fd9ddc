"""Tests of schemas.validation: the vectorised validator judges rows as the pydantic model does."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime

import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.cell_checks import DECIMAL_PATTERN
from schemas.currencies import CURRENCIES
from schemas.model import COLUMNS, SOLVIMON_EVENT_COLUMNS, SolvimonEvent, UsageRow
from schemas.validation import RowError, utc_instant, validate_events, validate_frame
from tests.rows import ACCOUNT, VALID_CELLS

Cells = dict[str, str | None]

VALID: Cells = VALID_CELLS


def frame_of(rows: Sequence[Cells], first_row: int = 2) -> pl.DataFrame:
    """Rows as the CSV reader hands them over: string columns plus rowNumber."""
    frame = pl.DataFrame(list(rows), schema=dict.fromkeys(COLUMNS, pl.String))
    numbers = pl.int_range(first_row, first_row + len(rows), dtype=pl.Int64, eager=True)
    return frame.with_columns(numbers.alias("rowNumber"))


def reasons(errors: list[RowError]) -> list[tuple[int, str, str]]:
    return [(error.row, error.column, error.reason) for error in errors]


# ---- the differential property: good cells and near misses, both engines agree ----

# Near misses: values just beside each rule, valid or not, listed once for both tests below.
DATE_PARTS = {"date": "2026-07-16", "T": "T", "clock": "19:20:30", "fraction": "", "offset": "Z"}
DATE_PART_MISSES = {
    "date": ["0000-01-01", "0001-01-01", "9999-12-31", "26-01-01", "2026-1-01", "02026-01-01"]
    + ["2000-02-29", "2024-02-29", "2100-02-29", "1900-02-29", "2025-02-29", "2026-02-30"]
    + [f"2026-{month}-{day}" for month in ("04", "06", "09", "11", "12") for day in ("30", "31")]
    + ["2026-13-01", "2026-00-10", "2026-01-00", "2026-01-32", "٢٠٢٦-01-01", "2026/01/01"],
    "T": ["t", " ", "", "TT"],
    "clock": ["24:00:00", "23:60:00", "23:59:60", "23:59:59", "00:00", "0:00:00", "00:00:00"],
    "fraction": [".", ".1", ".123456789", ".1234567890", ",5", ".٥"],
    "offset": ["z", "", "+24:00", "-24:00", "+05:60", "+23:59", "-00:00", "+0530", "+05", "Z\n"],
}
UUID_MISSES = [ACCOUNT.upper(), ACCOUNT.replace("-", ""), "{" + ACCOUNT + "}", ACCOUNT + "\n"]
UUID_MISSES += [ACCOUNT[:-1], ACCOUNT + "0", ACCOUNT[:-1] + "g", "١٢٣" + ACCOUNT[3:]]
DECIMAL_MISSES = ["1.", ".5", "-1", "+1", "1e3", " 1", "1 ", "1\n", "١", "٣.٥", "０", "1,5", "NaN"]
DECIMAL_MISSES += ["1" * 21, "1" * 20, "0." + "1" * 13, "0." + "1" * 12, "007.50", "0"]
NEAR_MISSES: dict[str, list[str]] = {
    "accountId": UUID_MISSES,
    "developerId": UUID_MISSES,
    "pricingUnit": [char * n for char in "uéあ😀" for n in range(127, 131)],
    "customUnit": [char * n for char in "uéあ😀" for n in range(127, 131)],
    "quantity": DECIMAL_MISSES,
    "unitPrice": DECIMAL_MISSES,
    "description": [char * n for char in "ué" for n in range(1023, 1027)],
    "currency": ["ABC", "XXX", "XTS", "BGN", "XAU", "US", "USDD", "uſd", "ıNR", "ＵＳＤ", "usd"],
    "eventDate": [
        "{date}{T}{clock}{fraction}{offset}".format(**{**DATE_PARTS, part: miss})
        for part, misses in DATE_PART_MISSES.items()
        for miss in misses
    ],
    "eventId": [char * n for char in "u😀" for n in range(127, 131)],
    "billable": ["TRUE", "False", "yes", "1", "T", " true", "true\n", "falſe", "truе"],
}

TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
EMPTY = st.sampled_from(["", None])
CASES: list[Callable[[str], str]] = [str, str.upper, str.lower, str.title]


def cased(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.builds(lambda value, case: case(value), values, st.sampled_from(CASES))


def signed_offsets() -> st.SearchStrategy[str]:
    sign, hours, minutes = st.sampled_from("+-"), st.integers(0, 23), st.integers(0, 59)
    return st.builds(lambda s, h, m: f"{s}{h:02d}:{m:02d}", sign, hours, minutes)


EVENT_DATES = st.builds(
    "{}T{}{}{}".format,
    st.dates(date(1, 1, 1), date(9999, 12, 31)).map(lambda day: f"{day.year:04d}-{day:%m-%d}"),
    st.times().map(lambda moment: f"{moment:%H:%M:%S}"),
    st.one_of(st.just(""), st.from_regex(r"\.[0-9]{1,9}", fullmatch=True)),
    st.one_of(st.just("Z"), signed_offsets()),
)
UUIDS = st.uuids().map(str)
DECIMALS = st.from_regex(DECIMAL_PATTERN, fullmatch=True)
GOOD: dict[str, st.SearchStrategy[str | None]] = {
    "accountId": cased(UUIDS),
    "developerId": cased(UUIDS),
    "pricingUnit": TEXT,
    "customUnit": st.one_of(EMPTY, TEXT),
    "quantity": DECIMALS,
    "unitPrice": st.one_of(EMPTY, DECIMALS),
    "description": st.one_of(EMPTY, TEXT),
    "currency": st.one_of(EMPTY, cased(st.sampled_from(sorted(CURRENCIES)))),
    "eventDate": EVENT_DATES,
    "eventId": st.one_of(EMPTY, TEXT),
    "billable": cased(st.sampled_from(["true", "false"])),
}


def spoiled(column: str) -> st.SearchStrategy[str | None]:
    """A cell that may break the column's rule: a near miss, an empty cell or any text."""
    return st.one_of(st.sampled_from(NEAR_MISSES[column]), EMPTY, TEXT)


@st.composite
def rows(draw: st.DrawFn) -> Cells:
    """A row of good cells, a few of them spoiled."""
    row = {column: draw(GOOD[column]) for column in COLUMNS}
    for column in draw(st.lists(st.sampled_from(COLUMNS), max_size=3, unique=True)):
        row[column] = draw(spoiled(column))
    return row


def pydantic_row(cells: Cells) -> dict[str, object] | None:
    """The model's normalised row, as the Avro record fields, or None if it is invalid."""
    try:
        return UsageRow.model_validate(cells).model_dump()
    except ValidationError:
        return None


def assert_both_judge_alike(cells: list[Cells]) -> None:
    """validate_frame keeps exactly the rows the model accepts, normalised as the model does."""
    result = validate_frame(frame_of(cells), max_errors=len(cells))
    valid = {row.pop("rowNumber"): row for row in result.valid.iter_rows(named=True)}
    expected = {number: pydantic_row(row) for number, row in enumerate(cells, start=2)}
    for number, model_row in expected.items():
        assert valid.get(number) == model_row, cells[number - 2]
    invalid = {number for number, model_row in expected.items() if model_row is None}
    assert result.invalid_rows == len(invalid)
    assert {error.row for error in result.errors} == invalid


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(rows(), min_size=1, max_size=25))
def test_vectorised_validation_agrees_with_the_model_row_for_row(cells: list[Cells]) -> None:
    assert_both_judge_alike(cells)


@pytest.mark.parametrize("column", COLUMNS)
def test_every_near_miss_is_judged_alike(column: str) -> None:
    misses = [*NEAR_MISSES[column], "", None, " "]
    assert_both_judge_alike([{**VALID, column: miss} for miss in misses])


# ---- utc_instant against Python's own conversion ----


@st.composite
def instants(draw: st.DrawFn) -> str:
    """Valid eventDates whose UTC instant Python can still represent."""
    local = draw(st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30, 23, 59, 59)))
    minutes = draw(st.integers(-(23 * 60 + 59), 23 * 60 + 59))
    sign, hours = "-" if minutes < 0 else "+", abs(minutes) // 60
    offset = draw(st.sampled_from(["Z", f"{sign}{hours:02d}:{abs(minutes) % 60:02d}"]))
    fraction = draw(st.sampled_from(["", ".5", f".{local.microsecond:06d}", ".123456789"]))
    return f"{local.year:04d}-{local:%m-%dT%H:%M:%S}{fraction}{offset}"


def utc_instants(event_dates: list[str]) -> list[datetime]:
    frame = pl.DataFrame({"eventDate": event_dates})
    found: list[datetime] = frame.select(utc_instant(pl.col("eventDate"))).to_series().to_list()
    return found


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(instants(), min_size=1, max_size=25))
@example(["2026-01-01T00:30:00+14:00", "2025-12-31T12:00:00-12:00", "2025-12-31T23:59:59-00:01"])
def test_utc_instant_agrees_with_python(event_dates: list[str]) -> None:
    utc = [datetime.fromisoformat(d).astimezone(UTC) for d in event_dates]
    assert utc_instants(event_dates) == [t.replace(tzinfo=None, microsecond=0) for t in utc]


@pytest.mark.parametrize(
    ("event_date", "day"),
    [
        ("2026-01-01T00:30:00+14:00", date(2025, 12, 31)),
        ("2025-12-31T12:00:00-12:00", date(2026, 1, 1)),
        ("2024-03-01T01:00:00+05:00", date(2024, 2, 29)),
        ("2100-03-01T00:59:59.999999999+01:00", date(2100, 2, 28)),
        ("2026-02-28T23:59:00-00:01", date(2026, 3, 1)),
        ("2026-07-01T00:00:00-00:00", date(2026, 7, 1)),
        ("2026-07-01T23:59:59.999Z", date(2026, 7, 1)),
    ],
)
def test_utc_day_crosses_day_month_and_year_boundaries(event_date: str, day: date) -> None:
    assert [instant.date() for instant in utc_instants([event_date])] == [day]


# ---- validate_frame's contract, rule by rule ----


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("accountId", None, "required"),
        ("developerId", "9A8B7C6D5E4F4A3B9C2D1E0F9A8B7C6D", "invalid_uuid"),
        ("pricingUnit", "é" * 129, "too_long"),
        ("customUnit", "u" * 129, "too_long"),
        ("quantity", "1e3", "invalid_decimal"),
        ("unitPrice", "١", "invalid_decimal"),
        ("description", "d" * 1025, "too_long"),
        ("currency", "usdd", "invalid_currency"),
        ("eventDate", "2026-02-29T00:00:00Z", "invalid_datetime"),
        ("eventId", "e" * 129, "too_long"),
        ("billable", "yes", "invalid_boolean"),
    ],
)
def test_each_rule_rejects_its_row(column: str, value: str | None, reason: str) -> None:
    result = validate_frame(frame_of([VALID, {**VALID, column: value}]))
    assert reasons(result.errors) == [(3, column, reason)]
    assert result.valid["rowNumber"].to_list() == [2]
    assert result.invalid_rows == 1


def test_a_row_without_units_is_rejected_on_pricing_unit() -> None:
    result = validate_frame(frame_of([{**VALID, "pricingUnit": "", "customUnit": None}]))
    assert reasons(result.errors) == [(2, "pricingUnit", "unit_required")]


def test_errors_come_in_row_then_column_order_with_raw_values() -> None:
    rows = [
        {**VALID, "currency": "abc"},
        VALID,
        {**VALID, "accountId": "", "billable": "maybe"},
        {**VALID, "quantity": "-1"},
    ]
    errors = validate_frame(frame_of(rows)).errors
    assert reasons(errors) == [
        (2, "currency", "invalid_currency"),
        (4, "accountId", "required"),
        (4, "billable", "invalid_boolean"),
        (5, "quantity", "invalid_decimal"),
    ]
    assert [error.value for error in errors] == ["abc", "", "maybe", "-1"]
    assert errors[0].message == "must be an active ISO 4217 currency code such as USD or EUR"


def test_max_errors_caps_rows_explained_but_not_rows_counted() -> None:
    two_errors = {**VALID, "quantity": "x", "currency": "x"}
    rows = [two_errors, VALID, two_errors, {**VALID, "billable": ""}, two_errors]
    result = validate_frame(frame_of(rows), max_errors=2)
    assert [error.row for error in result.errors] == [2, 2, 4, 4]
    assert result.invalid_rows == 4
    assert validate_frame(frame_of(rows), max_errors=0).errors == []


def test_valid_rows_are_normalised_and_amounts_and_dates_kept_as_given() -> None:
    row = {**VALID, "accountId": ACCOUNT.upper(), "currency": "chf", "billable": "FALSE"}
    row |= {"description": "", "unitPrice": "", "quantity": "007.50"}
    valid = validate_frame(frame_of([row])).valid.row(0, named=True)
    assert (valid["accountId"], valid["currency"], valid["billable"]) == (ACCOUNT, "CHF", False)
    assert (valid["description"], valid["unitPrice"]) == (None, None)
    assert (valid["quantity"], valid["eventDate"]) == ("007.50", VALID["eventDate"])


def test_extra_columns_are_carried_through_untouched() -> None:
    frame = frame_of([VALID, {**VALID, "quantity": "bad"}, VALID]).with_columns(
        pl.Series("uploadRef", ["a", "b", ""]),
        pl.Series("weight", [1.5, 2.5, 3.5], dtype=pl.Float32),
    )
    valid = validate_frame(frame).valid
    assert valid.columns == frame.columns
    assert valid.schema["weight"] == pl.Float32
    assert valid.select("uploadRef", "weight").rows() == [("a", 1.5), ("", 3.5)]


def test_boolean_billable_from_decoded_events() -> None:
    frame = frame_of([VALID, VALID]).with_columns(pl.Series("billable", [True, None]))
    result = validate_frame(frame)
    assert result.valid["billable"].to_list() == [True]
    assert [(e.row, e.column, e.value, e.reason) for e in result.errors] == [
        (3, "billable", None, "required")
    ]


def test_all_null_columns_are_typed() -> None:
    frame = frame_of([VALID]).with_columns(pl.lit(None).alias("description"))
    valid = validate_frame(frame).valid
    assert valid.schema["description"] == pl.String
    assert valid.height == 1


def test_a_row_without_row_number_is_reported_as_row_0() -> None:
    frame = frame_of([{**VALID, "quantity": ""}]).with_columns(
        pl.lit(None, pl.Int64).alias("rowNumber")
    )
    assert reasons(validate_frame(frame).errors) == [(0, "quantity", "required")]


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda frame: frame.drop("eventId"), "eventId is missing"),
        (lambda frame: frame.drop("rowNumber"), "rowNumber is missing"),
        (lambda frame: frame.with_columns(pl.lit(1).alias("quantity")), "quantity is Int32"),
    ],
)
def test_a_frame_of_the_wrong_shape_is_refused(
    change: Callable[[pl.DataFrame], pl.DataFrame], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        validate_frame(change(frame_of([VALID])))


def test_negative_max_errors_is_refused() -> None:
    with pytest.raises(ValueError, match="max_errors"):
        validate_frame(frame_of([VALID]), max_errors=-1)


def test_row_error_as_dict() -> None:
    error = RowError(row=3, column="currency", value="abc", reason="invalid_currency", message="m")
    assert error.to_dict() == {
        "row": 3,
        "column": "currency",
        "value": "abc",
        "reason": "invalid_currency",
        "message": "m",
    }


# ---- decoded events: each by the rules of its sourceFormat ----

SOLVIMON: Cells = {
    **dict.fromkeys(COLUMNS),
    "accountId": "Cust-ACME",
    "pricingUnit": "api_calls",
    "quantity": "12.5",
    "eventDate": "2026-10-01T08:15:00+02:00",
    "eventId": "3b1d6a52-8c3e-5b8e-9a57-6d6574657270",
    "billable": "true",
}


def events_of(rows: Sequence[Cells], formats: Sequence[str | None]) -> pl.DataFrame:
    """Decoded events: the record's columns (rowNumber being the place in the batch)."""
    return frame_of(rows).with_columns(pl.Series("sourceFormat", formats, dtype=pl.String))


def test_events_follow_their_source_formats_rules_and_keep_their_order() -> None:
    rows = [VALID, SOLVIMON, {**VALID, "accountId": ACCOUNT.upper()}, SOLVIMON, SOLVIMON, VALID]
    formats = ["appdirect", "solvimon", "appdirect", "appdirect", "csv", None]
    result = validate_events(events_of(rows, formats), max_errors=10)
    assert result.valid["rowNumber"].to_list() == [2, 3, 4]
    assert result.valid["accountId"].to_list() == [ACCOUNT, "Cust-ACME", ACCOUNT]
    assert reasons(result.errors) == [
        (5, "accountId", "invalid_uuid"),
        (5, "developerId", "required"),
        (6, "sourceFormat", "invalid_source_format"),
        (7, "sourceFormat", "invalid_source_format"),
    ]
    assert result.errors[2].value == "csv"
    assert result.invalid_rows == 3


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("accountId", None, "required"),
        ("accountId", "a" * 129, "too_long"),
        ("pricingUnit", "", "required"),
        ("pricingUnit", "é" * 129, "too_long"),
        ("quantity", "-1", "invalid_decimal"),
        ("eventDate", "2026-10-01", "invalid_datetime"),
        ("eventId", None, "required"),
        ("eventId", "e" * 129, "too_long"),
        ("billable", "yes", "invalid_boolean"),
    ],
)
def test_each_solvimon_event_rule_rejects_its_event(
    column: str, value: str | None, reason: str
) -> None:
    frame = events_of([SOLVIMON, {**SOLVIMON, column: value}], ["solvimon"] * 2)
    result = validate_events(frame, max_errors=10)
    assert reasons(result.errors) == [(3, column, reason)]
    assert result.valid["rowNumber"].to_list() == [2]


def model_event(cells: Cells, source_format: str) -> dict[str, object] | None:
    """The fields the format's model governs, normalised; None if the model refuses them."""
    model: type[UsageRow | SolvimonEvent] = UsageRow
    columns: Sequence[str] = COLUMNS
    if source_format == "solvimon":
        model, columns = SolvimonEvent, SOLVIMON_EVENT_COLUMNS
    try:
        return model.model_validate({c: cells[c] for c in columns}).model_dump()
    except ValidationError:
        return None


@st.composite
def mixed_events(draw: st.DrawFn) -> tuple[Cells, str]:
    """An AppDirect row, or a Solvimon event (any text account, a unit that may be missing)."""
    source_format = draw(st.sampled_from(["appdirect", "solvimon"]))
    row = draw(rows())
    if source_format == "solvimon":
        row["accountId"] = draw(st.one_of(TEXT, st.sampled_from(["a" * 128, "a" * 129])))
        row["pricingUnit"] = draw(st.one_of(EMPTY, spoiled("pricingUnit")))
    return row, source_format


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(mixed_events(), min_size=1, max_size=25))
def test_vectorised_event_validation_agrees_with_the_models(drawn: list[tuple[Cells, str]]) -> None:
    cells = [row for row, _ in drawn]
    formats = [source_format for _, source_format in drawn]
    result = validate_events(events_of(cells, formats), max_errors=len(drawn))
    valid = {row.pop("rowNumber"): row for row in result.valid.iter_rows(named=True)}
    for number, (row, source_format) in enumerate(drawn, start=2):
        expected = model_event(row, source_format)
        got = valid.get(number)
        assert (got is None) == (expected is None), (row, source_format)
        if got is not None and expected is not None:
            assert {k: got[k] for k in expected} == expected
    assert {error.row for error in result.errors} == set(range(2, len(drawn) + 2)) - set(valid)
