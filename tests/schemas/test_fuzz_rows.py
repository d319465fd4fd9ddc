"""Fuzz: any cells at all give valid rows or RowErrors naming row, column, value and reason.

Unlike the differential tests (near-valid rows), every cell here is arbitrary text, so the
validators meet what a hostile or broken file holds. Bounded to a few seconds each.
"""

from __future__ import annotations

import re

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.model import COLUMNS, explain_event, explain_row
from schemas.validation import RowError, ValidationResult, validate_events, validate_frame

Cells = dict[str, str | None]
REASON = re.compile(r"[a-z][a-z0-9_]*")
CELL = st.one_of(st.none(), st.text(max_size=40), st.sampled_from(["", " ", "0", "true", "Z"]))
ROWS = st.lists(st.fixed_dictionaries(dict.fromkeys(COLUMNS, CELL)), min_size=1, max_size=20)
FUZZ = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def _frame(rows: list[Cells], extra: dict[str, list[str | None]] | None = None) -> pl.DataFrame:
    columns = {c: pl.Series(c, [row[c] for row in rows], pl.String) for c in COLUMNS}
    numbers = pl.Series("rowNumber", range(2, len(rows) + 2), pl.Int64)
    extras = [pl.Series(name, values, pl.String) for name, values in (extra or {}).items()]
    return pl.DataFrame([*columns.values(), *extras, numbers])


def _assert_contract(
    result: ValidationResult, rows: list[Cells], max_errors: int, columns: tuple[str, ...]
) -> set[int]:
    """Every row is valid or invalid, every error names a real cell; the invalid rows."""
    assert result.valid.height + result.invalid_rows == len(rows)
    for error in result.errors:
        assert isinstance(error, RowError)
        assert 2 <= error.row < len(rows) + 2
        assert error.column in columns
        assert error.value == rows[error.row - 2].get(error.column)
        assert REASON.fullmatch(error.reason), error
        assert error.message
    invalid = {error.row for error in result.errors}
    assert len(invalid) == min(result.invalid_rows, max_errors)
    return set(range(2, len(rows) + 2)) - set(result.valid["rowNumber"].to_list())


@FUZZ
@given(ROWS, st.integers(1, 25))
def test_any_cells_become_valid_rows_or_row_errors(rows: list[Cells], max_errors: int) -> None:
    result = validate_frame(_frame(rows), max_errors=max_errors)
    invalid = _assert_contract(result, rows, max_errors, COLUMNS)
    for number, row in enumerate(rows, start=2):
        assert (explain_row(row, number) != []) == (number in invalid), row


@FUZZ
@given(ROWS, st.data())
def test_any_decoded_event_is_judged_by_its_format_or_refused(
    rows: list[Cells], data: st.DataObject
) -> None:
    formats = data.draw(
        st.lists(
            st.one_of(st.sampled_from(["appdirect", "solvimon", None]), st.text(max_size=10)),
            min_size=len(rows), max_size=len(rows),
        )
    )  # fmt: skip
    result = validate_events(_frame(rows, {"sourceFormat": formats}), max_errors=len(rows))
    events = [{**row, "sourceFormat": fmt} for row, fmt in zip(rows, formats, strict=True)]
    invalid = _assert_contract(result, events, len(rows), (*COLUMNS, "sourceFormat"))
    for number, event in enumerate(events, start=2):
        assert (explain_event(event, number) != []) == (number in invalid), event
