"""The Solvimon upload format: header, meters file, row rules and messages, events.

Expected values come from the specification (uuid.uuid5, json.dumps, the pydantic cell
types of schemas.cell_types), never from the code under test.
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from meterpipe.errors import ConfigError, FileRejectedError
from meterpipe.format_names import FormatName
from meterpipe.settings import UploadSettings
from producers.csv_chunks import CsvChunkReader
from producers.event_ids import EVENT_ID_NAMESPACE
from producers.formats import FormatChooser, RowFormat, available_formats
from producers.solvimon import FIXED_COLUMNS, MeterConfig, SolvimonFormat, load_meters
from schemas.cell_types import (
    OptionalAmount,
    OptionalEventDate,
    OptionalReference,
    OptionalText,
    Reference,
)
from schemas.codec import SingleObjectCodec
from schemas.model import explain_row
from schemas.uploads import UploadRecord
from schemas.validation import RowError, validate_events
from tests.rows import VALID_CELLS

Cells = dict[str, str | None]

EXAMPLES = Path(__file__).parents[2] / "examples"
METERS_TOML = 'values = ["api_calls", "storage_gb"]\nproperties = ["region", "plan"]\n'
METERS = MeterConfig(values=("api_calls", "storage_gb"), properties=("region", "plan"))
COLUMNS = (*FIXED_COLUMNS, "api_calls", "storage_gb", "region", "plan")
CUSTOMER, SUBSCRIPTION, EVENT, TIMESTAMP = FIXED_COLUMNS
UPLOAD = UploadRecord(
    reference="u-solvimon", name="usage.csv", upload_key="k", uploaded_at="2026-11-22T00:09:14.120Z"
)
ROW: Cells = {
    CUSTOMER: "Cust-ACME",
    SUBSCRIPTION: "sub-1",
    EVENT: "evt-1",
    TIMESTAMP: "2026-10-01T08:15:00+02:00",
    "api_calls": "1200",
    "storage_gb": "2.500",
    "region": "eu-west",
    "plan": "pro",
}


def frame_of(rows: Sequence[Cells], first_row: int = 2) -> pl.DataFrame:
    """Rows as the CSV reader hands them over: string columns plus rowNumber."""
    frame = pl.DataFrame(list(rows), schema=dict.fromkeys(COLUMNS, pl.String))
    numbers = pl.int_range(first_row, first_row + len(rows), dtype=pl.Int64, eager=True)
    return frame.with_columns(numbers.alias("rowNumber"))


def csv_bytes(rows: Sequence[Cells], header: Sequence[str] = COLUMNS) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(header))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def upload_settings(
    tmp_path: Path, meters: str | None = METERS_TOML, forced: FormatName | None = None
) -> UploadSettings:
    path = None
    if meters is not None:
        path = tmp_path / "meters.toml"
        path.write_text(meters, encoding="utf-8")
    return UploadSettings(meters=path, file_format=forced)


@dataclass(frozen=True)
class Read:
    """What the upload's first pass makes of a file."""

    row_format: RowFormat
    valid: pl.DataFrame
    errors: list[RowError]
    chunks: int


def read(
    data: bytes,
    formats: Sequence[RowFormat],
    forced: FormatName | None = None,
    chunk_bytes: int = 4096,
) -> Read:
    chooser = FormatChooser(formats, forced)
    valid, errors = [], []
    for chunk in CsvChunkReader(io.BytesIO(data), chooser, chunk_bytes):
        assert chooser.chosen is not None
        result = chooser.chosen.validate(chunk.frame, 1000)
        valid.append(result.valid)
        errors += result.errors
    assert chooser.chosen is not None
    return Read(chooser.chosen, pl.concat(valid), errors, len(valid))


def events_of(rows: Sequence[Cells], meters: MeterConfig = METERS) -> pl.DataFrame:
    row_format = SolvimonFormat(meters)
    result = row_format.validate(frame_of(rows), 100)
    assert result.errors == []
    return row_format.to_events(result.valid, UPLOAD)


def errors_of(*rows: Cells) -> list[tuple[int, str, str | None, str]]:
    result = SolvimonFormat(METERS).validate(frame_of(rows), 100)
    return [(e.row, e.column, e.value, e.reason) for e in result.errors]


# ---- the header picks the format ----


def test_the_header_picks_the_format_in_any_column_order(tmp_path: Path) -> None:
    formats = available_formats(upload_settings(tmp_path))
    solvimon = csv_bytes([ROW], list(reversed(COLUMNS)))
    appdirect = csv_bytes([VALID_CELLS], list(VALID_CELLS))
    assert read(solvimon, formats).row_format.name == "solvimon"
    assert read(appdirect, formats).row_format.name == "appdirect"


def test_without_meters_a_solvimon_header_is_rejected(tmp_path: Path) -> None:
    formats = available_formats(upload_settings(tmp_path, meters=None))
    assert [f.name for f in formats] == ["appdirect"]
    with pytest.raises(FileRejectedError, match=re.escape("header rejected (appdirect)")):
        read(csv_bytes([ROW]), formats)


def test_forcing_solvimon_without_meters_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="METERPIPE_METERS"):
        available_formats(upload_settings(tmp_path, meters=None, forced="solvimon"))


@pytest.mark.parametrize(
    ("forced", "data", "complaint"),
    [
        ("solvimon", csv_bytes([VALID_CELLS], list(VALID_CELLS)), "missing column(s): Customer"),
        ("appdirect", csv_bytes([ROW]), "missing column(s): accountId"),
    ],
)
def test_a_forced_format_refuses_the_other_header(
    tmp_path: Path, forced: FormatName, data: bytes, complaint: str
) -> None:
    formats = available_formats(upload_settings(tmp_path))
    with pytest.raises(FileRejectedError, match=re.escape(f"({forced}): {complaint}")):
        read(data, formats, forced)


@pytest.mark.parametrize(
    ("header", "complaint"),
    [
        ([*COLUMNS, "cpu_hours"], "unknown column(s): 'cpu_hours'"),
        ([c for c in COLUMNS if c != "plan"], "missing column(s): plan"),
        ([*COLUMNS[:3], "timestamp", *COLUMNS[4:]], "missing column(s): Timestamp"),
    ],
)
def test_a_header_off_by_one_column_names_it(
    tmp_path: Path, header: list[str], complaint: str
) -> None:
    formats = available_formats(upload_settings(tmp_path))
    data = ",".join(header).encode() + b"\n"
    with pytest.raises(FileRejectedError, match=re.escape(complaint)) as caught:
        read(data, formats)
    assert "(solvimon)" in str(caught.value)
    assert caught.value.reason == "bad_header"


# ---- the meters file ----


def test_the_meters_file_names_values_then_properties(tmp_path: Path) -> None:
    assert load_meters(upload_settings(tmp_path).meters or Path()) == METERS
    assert SolvimonFormat(METERS).columns == COLUMNS


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("values = [", "is not valid TOML"),
        ('properties = ["region"]', "values: Field required"),
        ("values = []", "values: Tuple should have at least 1 item"),
        ('values = "api_calls"', "values: Input should be a valid tuple"),
        ('values = ["api calls"]', "values.0: 'api calls' is not a meter name"),
        ('values = ["api:calls"]', "values.0: 'api:calls' is not a meter name"),
        ('values = ["_calls"]', "values.0: '_calls' is not a meter name"),
        ('values = ["timestamp"]', "meter 'timestamp' clashes with the fixed column 'Timestamp'"),
        ('values = ["a"]\nproperties = ["A"]', "meter 'A' clashes with meter 'a'"),
        ('values = ["quantity"]', "meter 'quantity' clashes with the event field 'quantity'"),
        ('values = ["a"]\nproperties = ["rowNumber"]', "clashes with the event field 'rowNumber'"),
        ('values = ["a", "a"]', "meter 'a' clashes with meter 'a'"),
        ('values = ["a"]\nvalue = ["b"]', "value: Extra inputs are not permitted"),
    ],
)
def test_a_bad_meters_file_is_a_config_error_saying_why(
    tmp_path: Path, text: str, complaint: str
) -> None:
    path = tmp_path / "meters.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(complaint)) as caught:
        load_meters(path)
    assert str(path) in str(caught.value)


def test_a_missing_or_undecodable_meters_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read the meters file .*No such file"):
        load_meters(tmp_path / "absent.toml")
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('values = ["débit"]'.encode("latin-1"))
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_meters(latin1)


# ---- the row rules and their messages ----


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        (CUSTOMER, "", "required"),
        (CUSTOMER, "c" * 129, "too_long"),
        (SUBSCRIPTION, "s" * 129, "too_long"),
        (EVENT, "", "required"),
        (EVENT, "e" * 129, "too_long"),
        (TIMESTAMP, "2026-10-01 08:15:00Z", "invalid_datetime"),
        (TIMESTAMP, "2026-02-30T08:15:00Z", "invalid_datetime"),
        ("api_calls", "-1", "invalid_decimal"),
        ("storage_gb", "1e3", "invalid_decimal"),
        ("region", "r" * 1025, "too_long"),
    ],
)
def test_each_rule_rejects_its_row_on_the_solvimon_column(
    column: str, value: str, reason: str
) -> None:
    assert errors_of({**ROW, column: value}) == [(2, column, value, reason)]


def test_empty_optional_cells_are_fine_and_come_out_null() -> None:
    row = {**ROW, SUBSCRIPTION: "", TIMESTAMP: "", "api_calls": "", "region": "", "plan": ""}
    result = SolvimonFormat(METERS).validate(frame_of([row]), 10)
    assert result.errors == []
    valid = result.valid.row(0, named=True)
    assert valid == {
        **dict.fromkeys(COLUMNS),
        CUSTOMER: "Cust-ACME",
        EVENT: "evt-1",
        "storage_gb": "2.500",
        "rowNumber": 2,
        "eventDate": valid["eventDate"],
    }


def test_a_row_without_any_meter_value_is_an_error() -> None:
    result = SolvimonFormat(METERS).validate(
        frame_of([{**ROW, "api_calls": "", "storage_gb": ""}]), 10
    )
    assert result.errors == [
        RowError(
            2, "api_calls", None, "no_meter_value",
            "at least one meter value is required (api_calls, storage_gb)",
        )
    ]  # fmt: skip


def test_messages_are_the_same_as_for_appdirect_cells() -> None:
    bad_date, bad_amount = "2026-13-01T00:00:00Z", "1,5"
    row = {**ROW, TIMESTAMP: bad_date, "storage_gb": bad_amount}
    solvimon = SolvimonFormat(METERS).validate(frame_of([row]), 10).errors
    appdirect = explain_row({**VALID_CELLS, "eventDate": bad_date, "quantity": bad_amount}, 2)
    assert {(e.reason, e.message) for e in solvimon} == {(e.reason, e.message) for e in appdirect}


def test_a_repeated_event_reference_is_an_error_on_its_later_rows_even_chunks_apart() -> None:
    rows = [{**ROW, EVENT: f"evt-{n}"} for n in range(300)]
    rows += [{**ROW, EVENT: "evt-3"}, {**ROW, EVENT: "evt-299"}, {**ROW, EVENT: "evt-3"}]
    formats = [SolvimonFormat(METERS)]
    found = read(csv_bytes(rows), formats, chunk_bytes=1024)
    assert found.chunks > 10
    assert found.valid.height == 300
    message = "repeats the Event reference of row {}; it must be unique"
    assert found.errors == [
        RowError(302, EVENT, "evt-3", "duplicate_reference", message.format(5)),
        RowError(303, EVENT, "evt-299", "duplicate_reference", message.format(301)),
        RowError(304, EVENT, "evt-3", "duplicate_reference", message.format(5)),
    ]


def test_a_repeat_within_one_chunk_names_the_first_row() -> None:
    assert errors_of(ROW, ROW) == [(3, EVENT, "evt-1", "duplicate_reference")]


def test_references_are_remembered_per_upload(tmp_path: Path) -> None:
    data = csv_bytes([ROW])
    uploads = [read(data, available_formats(upload_settings(tmp_path))) for _ in range(2)]
    assert [found.errors for found in uploads] == [[], []]
    same_instance = [SolvimonFormat(METERS)]
    read(data, same_instance)
    assert read(data, same_instance).errors[0].reason == "duplicate_reference"


# ---- the polars rules agree with the pydantic cell types, row for row ----

CELL_TYPES: dict[str, TypeAdapter[Any]] = {
    CUSTOMER: TypeAdapter(Reference),
    SUBSCRIPTION: TypeAdapter(OptionalReference),
    EVENT: TypeAdapter(Reference),
    TIMESTAMP: TypeAdapter(OptionalEventDate),
    "api_calls": TypeAdapter(OptionalAmount),
    "storage_gb": TypeAdapter(OptionalAmount),
    "region": TypeAdapter(OptionalText),
    "plan": TypeAdapter(OptionalText),
}
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
SOMETIMES_EMPTY = st.sampled_from(["", None])
CELLS: dict[str, st.SearchStrategy[str | None]] = {
    CUSTOMER: st.one_of(TEXT, st.sampled_from(["c" * 128, "c" * 129, "é" * 129])),
    SUBSCRIPTION: st.one_of(TEXT, SOMETIMES_EMPTY, st.just("s" * 129)),
    TIMESTAMP: st.one_of(
        SOMETIMES_EMPTY,
        TEXT,
        st.sampled_from(
            ["2026-10-01T08:15:00Z", "2024-02-29T23:59:59.5-12:00", "2026-02-29T00:00:00Z"]
        ),
    ),
    "api_calls": st.one_of(
        SOMETIMES_EMPTY, TEXT, st.from_regex(r"[0-9]{1,21}(\.[0-9]{1,13})?", fullmatch=True)
    ),
    "storage_gb": st.one_of(SOMETIMES_EMPTY, st.sampled_from(["0", "007.50", "1.", ".5", "1e3"])),
    "region": st.one_of(SOMETIMES_EMPTY, TEXT, st.just("r" * 1025)),
    "plan": st.one_of(SOMETIMES_EMPTY, TEXT),
}


def accepted_by_the_cell_types(row: Cells) -> bool:
    try:
        for column, cell_type in CELL_TYPES.items():
            cell_type.validate_python(row[column])
    except ValidationError:
        return False
    return bool(row["api_calls"] or row["storage_gb"])


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.fixed_dictionaries(CELLS), min_size=1, max_size=20))
def test_vectorised_rules_agree_with_the_pydantic_cell_types(drawn: list[Cells]) -> None:
    rows = [{**row, EVENT: f"evt-{n}"} for n, row in enumerate(drawn)]
    result = SolvimonFormat(METERS).validate(frame_of(rows), len(rows))
    accepted = {n for n, row in enumerate(rows, start=2) if accepted_by_the_cell_types(row)}
    assert set(result.valid["rowNumber"]) == accepted
    assert {error.row for error in result.errors} == set(range(2, len(rows) + 2)) - accepted
    assert result.invalid_rows == len(rows) - len(accepted)


# ---- rows become events ----


def test_each_non_empty_meter_value_is_one_event_numbered_by_row_and_meter() -> None:
    events = events_of([ROW, {**ROW, EVENT: "evt-2", "api_calls": "", "storage_gb": "0"}])
    assert events.select("rowNumber", "pricingUnit", "quantity").rows() == [
        (2001, "api_calls", "1200"),
        (2002, "storage_gb", "2.500"),
        (3002, "storage_gb", "0"),
    ]
    namespace = uuid.uuid5(EVENT_ID_NAMESPACE, "solvimon")
    assert events.row(0, named=True) == {
        "accountId": "Cust-ACME",
        "developerId": None,
        "pricingUnit": "api_calls",
        "customUnit": None,
        "quantity": "1200",
        "unitPrice": None,
        "description": None,
        "currency": None,
        "eventDate": "2026-10-01T08:15:00+02:00",
        "eventId": str(uuid.uuid5(namespace, "evt-1")),
        "billable": True,
        "uploadRef": "u-solvimon",
        "rowNumber": 2001,
        "eventIdAssigned": False,
        "sourceFormat": "solvimon",
        "subscriptionRef": "sub-1",
        "properties": '{"plan":"pro","region":"eu-west"}',
    }


def test_every_meter_value_of_a_row_carries_its_reference_s_event_id() -> None:
    namespace = uuid.uuid5(EVENT_ID_NAMESPACE, "solvimon")
    rows = [{**ROW, EVENT: f"evt-{n}", CUSTOMER: f"c{n}"} for n in range(50)]
    row_format = SolvimonFormat(METERS)
    valid = row_format.validate(frame_of(rows), 100).valid
    other_upload = UploadRecord(reference="u-other", name="again.csv", upload_key="other")
    ids = row_format.to_events(valid, UPLOAD)["eventId"].to_list()
    assert row_format.to_events(valid, other_upload)["eventId"].to_list() == ids
    assert ids == [str(uuid.uuid5(namespace, f"evt-{n}")) for n in range(50) for _ in range(2)]


PROPERTY_VALUES = ['quote " back \\ slash', "new\nline\ttab\x01", "ünïcödé 😀", "{}[],:"]


@pytest.mark.parametrize("value", PROPERTY_VALUES)
def test_properties_are_compact_json_with_sorted_keys(value: str) -> None:
    events = events_of([{**ROW, "region": value, "plan": "pro"}])
    expected = json.dumps(
        {"region": value, "plan": "pro"}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    assert events["properties"].to_list() == [expected, expected]


def test_empty_properties_are_left_out_and_none_left_is_null() -> None:
    events = events_of([{**ROW, "plan": ""}, {**ROW, EVENT: "evt-2", "region": "", "plan": ""}])
    assert events["properties"].to_list() == ['{"region":"eu-west"}'] * 2 + [None] * 2
    without = MeterConfig(values=("api_calls", "storage_gb"))
    row_format = SolvimonFormat(without)
    frame = frame_of([ROW]).drop("region", "plan")
    valid = row_format.validate(frame, 10).valid
    assert row_format.to_events(valid, UPLOAD)["properties"].to_list() == [None, None]


def test_date_rules_see_a_missing_timestamp_as_the_time_of_reading() -> None:
    before = datetime.now(UTC)
    rows = [{**ROW, TIMESTAMP: "", EVENT: "evt-0"}, ROW]
    valid = SolvimonFormat(METERS).validate(frame_of(rows), 10).valid
    read_at = datetime.fromisoformat(valid["eventDate"][0])
    assert before - timedelta(milliseconds=1) <= read_at <= datetime.now(UTC)
    assert valid["eventDate"][1] == ROW[TIMESTAMP]


def test_an_empty_timestamp_is_the_upload_time_so_events_never_change() -> None:
    rows = [{**ROW, TIMESTAMP: ""}, {**ROW, EVENT: "evt-2"}]
    events = events_of(rows)
    assert events["eventDate"].to_list() == [UPLOAD.uploaded_at] * 2 + [ROW[TIMESTAMP]] * 2
    assert events_of(rows).equals(events)


def test_events_travel_the_wire_and_pass_the_consumers_rules() -> None:
    events = events_of([ROW, {**ROW, EVENT: "evt-2", TIMESTAMP: "", "region": ""}])
    codec = SingleObjectCodec()
    decoded = codec.decode(codec.encode(events))
    assert decoded.frame.to_dicts() == events.to_dicts()
    checked = validate_events(decoded.frame, max_errors=10)
    assert (checked.errors, checked.invalid_rows) == ([], 0)
    assert checked.valid["accountId"].to_list() == ["Cust-ACME"] * 4


def test_the_example_files_are_valid() -> None:
    meters = load_meters(EXAMPLES / "solvimon-meters.toml")
    formats: list[RowFormat] = available_formats(UploadSettings(meters=None))
    formats.append(SolvimonFormat(meters))
    for name, fmt in [("solvimon-usage.csv", "solvimon"), ("appdirect-usage.csv", "appdirect")]:
        found = read((EXAMPLES / name).read_bytes(), formats)
        assert (found.row_format.name, found.errors) == (fmt, [])
