"""Tests of schemas.model: the usage-row rules, their reasons and messages, and the Avro mirror."""

from __future__ import annotations

import copy
import json
import pickle
import typing
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import fastavro
import pytest
from fastavro.validation import validate
from pydantic import ValidationError

from schemas.cell_checks import ExactDecimal
from schemas.model import UsageEvent, UsageRow, explain_event, explain_row
from tests.rows import ACCOUNT, DEVELOPER, VALID_CELLS
from tests.schemas.schema_files import CURRENT_FILE

VALID = VALID_CELLS

# The record a UsageEvent must dump to: Avro's own field names and types.
RECORD: dict[str, object] = {
    **VALID,
    "quantity": "007.50",
    "unitPrice": None,
    "billable": True,
    "uploadRef": "upload-1",
    "rowNumber": 2,
    "eventIdAssigned": False,
    "sourceFormat": "appdirect",
    "subscriptionRef": None,
    "properties": None,
}


def reasons_of(cells: dict[str, str | None]) -> list[tuple[str, str]]:
    """(column, reason) of each error of `cells`."""
    return [(error.column, error.reason) for error in explain_row(cells, row=2)]


def reasons(**changes: str | None) -> list[tuple[str, str]]:
    """(column, reason) of each error of VALID with `changes` applied."""
    return reasons_of({**VALID, **changes})


def test_a_valid_row_has_no_errors() -> None:
    assert explain_row(VALID, row=2) == []


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("accountId", None, "required"),
        ("accountId", "", "required"),
        ("accountId", "123e4567e89b12d3a456426614174000", "invalid_uuid"),
        ("accountId", "{123e4567-e89b-12d3-a456-426614174000}", "invalid_uuid"),
        ("accountId", "123e4567-e89b-12d3-a456-42661417400g", "invalid_uuid"),
        ("accountId", "123e4567-e89b-12d3-a456-4266141740001", "invalid_uuid"),
        ("developerId", "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d\n", "invalid_uuid"),
        ("developerId", " 9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d", "invalid_uuid"),
        ("pricingUnit", "u" * 129, "too_long"),
        ("customUnit", "é" * 129, "too_long"),
        ("quantity", None, "required"),
        ("quantity", "", "required"),
        ("quantity", "1.", "invalid_decimal"),
        ("quantity", ".5", "invalid_decimal"),
        ("quantity", "-1", "invalid_decimal"),
        ("quantity", "+1", "invalid_decimal"),
        ("quantity", "1e3", "invalid_decimal"),
        ("quantity", " 1", "invalid_decimal"),
        ("quantity", "1\n", "invalid_decimal"),
        ("quantity", "١", "invalid_decimal"),
        ("quantity", "1" * 21, "invalid_decimal"),
        ("quantity", "0." + "1" * 13, "invalid_decimal"),
        ("quantity", "1,5", "invalid_decimal"),
        ("quantity", "NaN", "invalid_decimal"),
        ("unitPrice", "-0.25", "invalid_decimal"),
        ("description", "d" * 1025, "too_long"),
        ("currency", "ABC", "invalid_currency"),
        ("currency", "US", "invalid_currency"),
        ("currency", "USDD", "invalid_currency"),
        ("currency", "XXX", "invalid_currency"),
        ("currency", "XTS", "invalid_currency"),
        ("currency", "BGN", "invalid_currency"),
        ("currency", "uſd", "invalid_currency"),
        ("currency", "ＵＳＤ", "invalid_currency"),
        ("eventDate", None, "required"),
        ("eventDate", "97-07-16T19:20:30+01:00", "invalid_datetime"),
        ("eventDate", "2026-07-16T19:20:30", "invalid_datetime"),
        ("eventDate", "2026-07-16t19:20:30Z", "invalid_datetime"),
        ("eventDate", "2026-07-16T19:20:30z", "invalid_datetime"),
        ("eventDate", "2026-07-16 19:20:30Z", "invalid_datetime"),
        ("eventDate", "2026-07-16T19:20:30+0100", "invalid_datetime"),
        ("eventDate", "2026-07-16T19:20:30.Z", "invalid_datetime"),
        ("eventDate", "2026-07-16T19:20:30.1234567890Z", "invalid_datetime"),
        ("eventDate", "2026-02-30T00:00:00Z", "invalid_datetime"),
        ("eventDate", "2025-02-29T00:00:00Z", "invalid_datetime"),
        ("eventDate", "2100-02-29T00:00:00Z", "invalid_datetime"),
        ("eventDate", "2026-04-31T00:00:00Z", "invalid_datetime"),
        ("eventDate", "2026-13-01T00:00:00Z", "invalid_datetime"),
        ("eventDate", "2026-02-28T24:00:00Z", "invalid_datetime"),
        ("eventDate", "2026-02-28T23:60:00Z", "invalid_datetime"),
        ("eventDate", "2026-12-31T23:59:60Z", "invalid_datetime"),
        ("eventDate", "0000-01-01T00:00:00Z", "invalid_datetime"),
        ("eventDate", "2026-07-16T19:20:30+24:00", "invalid_datetime"),
        ("eventDate", "2026-07-16T19:20:30+05:60", "invalid_datetime"),
        ("eventId", "e" * 129, "too_long"),
        ("billable", None, "required"),
        ("billable", "yes", "invalid_boolean"),
        ("billable", "1", "invalid_boolean"),
        ("billable", " true", "invalid_boolean"),
        ("billable", "falſe", "invalid_boolean"),
    ],
)
def test_each_rule_reports_its_reason(column: str, value: str | None, reason: str) -> None:
    assert reasons(**{column: value}) == [(column, reason)]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("accountId", ACCOUNT.upper()),
        ("pricingUnit", "u" * 128),
        ("customUnit", "é" * 128),
        ("quantity", "0"),
        ("quantity", "00012.500"),
        ("quantity", "9" * 20 + "." + "9" * 12),
        ("unitPrice", None),
        ("unitPrice", ""),
        ("description", "d" * 1024),
        ("currency", "eur"),
        ("currency", "Chf"),
        ("currency", "XAU"),
        ("currency", "XDR"),
        ("currency", "XCG"),
        ("currency", None),
        ("eventDate", "2024-02-29T00:00:00Z"),
        ("eventDate", "2000-02-29T12:00:00+14:00"),
        ("eventDate", "0001-01-01T00:00:00Z"),
        ("eventDate", "9999-12-31T23:59:59.999999999-23:59"),
        ("eventDate", "2026-07-16T19:20:30.1-00:00"),
        ("eventId", "e" * 128),
        ("eventId", ""),
        ("billable", "TRUE"),
        ("billable", "False"),
        ("billable", "fAlSe"),
    ],
)
def test_accepted_values(column: str, value: str | None) -> None:
    assert reasons(**{column: value}) == []


def test_at_least_one_unit_is_required_and_reported_on_pricing_unit() -> None:
    assert reasons(pricingUnit=None, customUnit="") == [("pricingUnit", "unit_required")]
    assert reasons(pricingUnit=None, customUnit="GB-hours") == []


def test_missing_units_are_reported_next_to_other_errors() -> None:
    found = reasons(pricingUnit="", quantity="-1", billable="yes")
    assert found == [
        ("pricingUnit", "unit_required"),
        ("quantity", "invalid_decimal"),
        ("billable", "invalid_boolean"),
    ]


def test_a_unit_too_long_counts_as_given() -> None:
    assert reasons(pricingUnit="u" * 129) == [("pricingUnit", "too_long")]


def test_errors_carry_row_raw_value_and_message_in_column_order() -> None:
    cells = {**VALID, "accountId": "", "customUnit": "é" * 129, "currency": "abc"}
    errors = explain_row(cells, row=7)
    assert [(e.row, e.column, e.value, e.reason) for e in errors] == [
        (7, "accountId", "", "required"),
        (7, "customUnit", "é" * 129, "too_long"),
        (7, "currency", "abc", "invalid_currency"),
    ]
    assert errors[1].message == "must be at most 128 characters, not 129"
    assert "ISO 4217" in errors[2].message


def test_calendar_and_format_mistakes_get_different_messages() -> None:
    malformed = explain_row({**VALID, "eventDate": "2026-07-16"}, row=2)
    unreal = explain_row({**VALID, "eventDate": "2026-02-30T00:00:00Z"}, row=2)
    assert malformed[0].message.startswith("must look like")
    assert unreal[0].message.startswith("is not a real date")


def test_missing_cells_count_as_empty_and_other_keys_are_ignored() -> None:
    cells = {key: value for key, value in VALID.items() if key != "quantity"}
    assert reasons_of({**cells, "rowNumber": "9"}) == [("quantity", "required")]


def test_pydantic_error_type_is_the_reason_code() -> None:
    with pytest.raises(ValidationError) as caught:
        UsageRow.model_validate({**VALID, "accountId": "nope"})
    assert [error["type"] for error in caught.value.errors()] == ["invalid_uuid"]


def test_row_is_normalised() -> None:
    row = UsageRow.model_validate(
        {**VALID, "accountId": ACCOUNT.upper(), "currency": "usd", "billable": "FALSE"}
        | {"customUnit": "", "description": "", "eventId": ""}
    )
    assert row.account_id == ACCOUNT
    assert row.currency == "USD"
    assert row.billable is False
    assert (row.custom_unit, row.description, row.event_id) == (None, None, None)
    assert row.quantity == Decimal("12.5")
    assert row.event_date == VALID["eventDate"]


def test_row_can_be_built_by_attribute_names() -> None:
    row = UsageRow.model_validate(
        {
            "account_id": ACCOUNT,
            "developer_id": DEVELOPER,
            "custom_unit": "GB",
            "quantity": "1",
            "event_date": "2026-01-01T00:00:00Z",
            "billable": "true",
        }
    )
    assert (row.pricing_unit, row.custom_unit, row.billable) == (None, "GB", True)


def test_row_without_units_is_refused_even_when_they_are_left_out() -> None:
    with pytest.raises(ValidationError, match="unit_required"):
        UsageRow.model_validate(
            {
                "account_id": ACCOUNT,
                "developer_id": DEVELOPER,
                "quantity": "1",
                "event_date": "2026-01-01T00:00:00Z",
                "billable": "true",
            }
        )


def test_row_is_frozen() -> None:
    row = UsageRow.model_validate(VALID)
    with pytest.raises(ValidationError):
        row.currency = "EUR"  # type: ignore[misc]


def test_amounts_keep_their_exact_text() -> None:
    row = UsageRow.model_validate({**VALID, "quantity": "007.50", "unitPrice": "0.0000001"})
    assert isinstance(row.quantity, ExactDecimal)
    assert row.quantity.text == "007.50"
    assert row.quantity == Decimal("7.5")
    assert row.model_dump()["quantity"] == "007.50"
    assert row.model_dump()["unitPrice"] == "0.0000001"
    assert repr(row.quantity) == "ExactDecimal('007.50')"


def test_exact_decimal_survives_pickle_and_copy_and_computes_as_decimal() -> None:
    amount = ExactDecimal("0010.0")
    for twin in (pickle.loads(pickle.dumps(amount)), copy.copy(amount), copy.deepcopy(amount)):
        assert isinstance(twin, ExactDecimal)
        assert twin.text == "0010.0"
    total = amount + Decimal("0.5")
    assert type(total) is Decimal
    assert total == Decimal("10.5")


def test_event_datetime_is_aware_and_keeps_the_offset() -> None:
    row = UsageRow.model_validate({**VALID, "eventDate": "2026-07-16T19:20:30.123456789-05:30"})
    moment = row.event_datetime
    assert moment.utcoffset() == -timedelta(hours=5, minutes=30)
    assert moment == datetime(2026, 7, 17, 0, 50, 30, 123456, tzinfo=UTC)


def test_event_needs_an_event_id() -> None:
    event = {**RECORD, "eventId": ""}
    with pytest.raises(ValidationError) as caught:
        UsageEvent.model_validate(event)
    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [(("eventId",), "required")]


def test_event_provenance_defaults() -> None:
    event = UsageEvent.model_validate({**VALID, "billable": True})
    assert (event.upload_ref, event.row_number, event.event_id_assigned) == (None, None, False)


def test_event_round_trips_an_avro_record() -> None:
    event = UsageEvent.model_validate(RECORD)
    assert event.model_dump() == RECORD
    schema = fastavro.parse_schema(json.loads(CURRENT_FILE.read_text()))
    assert validate(event.model_dump(), schema, raise_errors=True)


def avro_fields() -> list[dict[str, typing.Any]]:
    fields: list[dict[str, typing.Any]] = json.loads(CURRENT_FILE.read_text())["fields"]
    return fields


# Python types that may stand for an Avro type; amounts are decimals serialised as strings.
PYTHON_TYPES: dict[str, set[type]] = {
    "string": {str, ExactDecimal},
    "boolean": {bool},
    "long": {int},
}


def test_usage_event_fields_follow_the_avro_schema_in_order() -> None:
    aliases = [field.alias for field in UsageEvent.model_fields.values()]
    assert aliases == [field["name"] for field in avro_fields()]


@pytest.mark.parametrize("avro", avro_fields(), ids=lambda field: str(field["name"]))
def test_usage_event_field_matches_its_avro_field(avro: dict[str, typing.Any]) -> None:
    name = next(n for n, f in UsageEvent.model_fields.items() if f.alias == avro["name"])
    field = UsageEvent.model_fields[name]
    nullable = isinstance(avro["type"], list)
    avro_type = avro["type"][1] if nullable else avro["type"]
    python_types = set(typing.get_args(field.annotation)) or {field.annotation}
    assert (type(None) in python_types) == nullable
    [python_type] = python_types - {type(None)}
    assert python_type in PYTHON_TYPES[avro_type]
    assert field.is_required() == ("default" not in avro)
    if "default" in avro:
        assert field.default == avro["default"]


# ---- Solvimon events, and events of either format ----

SOLVIMON_RECORD: dict[str, object] = {
    **RECORD,
    "accountId": "Cust-ACME",
    "developerId": None,
    "pricingUnit": "api_calls",
    "unitPrice": None,
    "description": None,
    "currency": None,
    "sourceFormat": "solvimon",
    "subscriptionRef": "sub-1",
    "properties": '{"region":"eu"}',
}


def test_a_solvimon_event_round_trips_an_avro_record() -> None:
    event = UsageEvent.model_validate(SOLVIMON_RECORD)
    assert event.model_dump() == SOLVIMON_RECORD
    schema = fastavro.parse_schema(json.loads(CURRENT_FILE.read_text()))
    assert validate(event.model_dump(), schema, raise_errors=True)


def event_reasons(**changes: object) -> list[tuple[str, str]]:
    cells = {k: None if v is None else str(v) for k, v in {**SOLVIMON_RECORD, **changes}.items()}
    return [(error.column, error.reason) for error in explain_event(cells, row=2)]


def test_explain_event_applies_the_rules_of_the_source_format() -> None:
    assert event_reasons() == []
    assert event_reasons(pricingUnit=None, quantity="1e3") == [
        ("pricingUnit", "required"),
        ("quantity", "invalid_decimal"),
    ]
    assert event_reasons(sourceFormat="appdirect") == [
        ("accountId", "invalid_uuid"),
        ("developerId", "required"),
    ]
    assert event_reasons(sourceFormat="csv") == [("sourceFormat", "invalid_source_format")]


def test_explain_event_of_an_appdirect_event_is_explain_row() -> None:
    cells = {**VALID, "quantity": "-1", "sourceFormat": "appdirect"}
    assert explain_event(cells, row=4) == explain_row(cells, row=4)
