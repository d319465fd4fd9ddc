"""Conflicting duplicates through the real CLI, a real broker and a real store.

The ground truth is computed from the CSVs with the csv module, Decimal and datetime: a
re-sent eventId conflicts when any compared field differs as a value (12.5 equals 12.500,
an eventDate is its UTC instant); the first arrival counts.
"""

from __future__ import annotations

import csv
import json
import urllib.request
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.groundtruth import as_comparable, expected_totals
from tests.postgres import ON_EITHER_STORE
from tests.processes import metrics_port, run_cli, start_cli, stop, totals, wait_for
from tests.rows import VALID_CELLS as CELLS
from tests.test_solvimon_end_to_end import FIXED, VALUES, published, write_csv

pytestmark = pytest.mark.slow

VALID_CELLS = {name: value or "" for name, value in CELLS.items()}  # as the csv module reads
DECIMALS = ("quantity", "unitPrice")
COMPARED = ("accountId", "pricingUnit", "customUnit", "quantity", "unitPrice", "currency",
            "description", "eventDate", "billable")  # fmt: skip


def _value(field: str, text: str) -> Any:
    if not text:
        return text
    if field in DECIMALS:
        return Decimal(text)
    if field == "eventDate":
        return datetime.fromisoformat(text)  # aware: compares as the instant
    return text


def _differing(first: dict[str, str], this: dict[str, str]) -> set[str]:
    return {f for f in COMPARED if _value(f, first[f]) != _value(f, this[f])}


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _scrape(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
    raise AssertionError(f"{name} not exported")


def _show(env: dict[str, str], reference: str) -> dict[str, Any]:
    shown: dict[str, Any] = json.loads(run_cli(env, "uploads", "show", reference, "--json").stdout)
    return shown


@ON_EITHER_STORE
def test_a_re_send_with_other_content_is_a_conflict_and_an_identical_one_is_not(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    first_rows = [
        {**VALID_CELLS, "eventId": f"evt-{n}", "quantity": f"{n}.500", "customUnit": ""}
        for n in range(40)
    ]
    changes: list[dict[str, str]] = [
        {},  # identical
        {"quantity": "999"},
        {"description": "other calls"},
        {"eventDate": "2026-07-16T19:20:31+01:00"},  # another instant
        {"eventDate": "2026-07-16T18:20:30Z"},  # the same instant written otherwise
        {"quantity": "{q}0000"},  # 12.5 and 12.50000: the same value
    ]
    resent = []
    for n, row in enumerate(first_rows[:30]):
        change = changes[n % len(changes)]
        resent.append({**row, **{k: v.format(q=row["quantity"]) for k, v in change.items()}})
    fresh = [{**VALID_CELLS, "eventId": f"new-{n}", "customUnit": ""} for n in range(5)]
    first = write_csv(tmp_path / "a.csv", list(VALID_CELLS), iter(first_rows))
    second = write_csv(tmp_path / "b.csv", list(VALID_CELLS), iter(resent + fresh))
    differing = {row["eventId"]: _differing(first_rows[n], row) for n, row in enumerate(resent)}
    conflicting = {event_id for event_id, fields in differing.items() if fields}
    assert 0 < len(conflicting) < len(resent)

    env = {**pipeline_env, "METERPIPE_BATCH_MAX_EVENTS": "9"}
    consumer = start_cli(env, tmp_path / "consume.log", "consume")
    try:
        port = metrics_port(consumer, tmp_path / "consume.log")
        uploads = published(env, first, second)
        by_name = {upload["name"]: upload for upload in uploads}
        assert by_name["a.csv"]["conflicts"] == 0
        assert by_name["b.csv"]["duplicates"] == len(resent)
        assert by_name["b.csv"]["conflicts"] == len(conflicting)
        shown = _show(env, by_name["b.csv"]["reference"])
        assert wait_for(
            lambda: _scrape(port, "meterpipe_events_conflicting_total") == len(conflicting) or None,
            30, "the conflicting metric",
        )  # fmt: skip
    finally:
        stop(consumer)
    assert shown["conflicts"] == len(conflicting)
    details = {d["eventId"]: d for d in shown["conflictDetails"]}
    assert set(details) == conflicting
    first_by_id = {row["eventId"]: row for row in first_rows}
    for event_id, detail in details.items():
        assert detail["firstUpload"] == by_name["a.csv"]["reference"]
        assert detail["firstRetained"] is True
        found = {d["field"]: (d["first"], d["this"]) for d in detail["differences"]}
        this = next(row for row in resent if row["eventId"] == event_id)
        assert found == {f: (first_by_id[event_id][f], this[f]) for f in differing[event_id]}
    assert as_comparable(totals(env)) == expected_totals(first, second)


@ON_EITHER_STORE
@pytest.mark.usefixtures("consumer")
def test_a_solvimon_re_send_conflicts_on_a_changed_or_newly_filled_meter(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    meters = tmp_path / "meters.toml"
    meters.write_text('values = ["api_calls", "storage_gb"]\nproperties = []\n', encoding="utf-8")
    header = [*FIXED, *VALUES]
    base = {"Customer reference": "Cust-1", "Pricing plan subscription reference": "",
            "Timestamp": "2026-10-01T08:15:00Z"}  # fmt: skip
    first_rows = [
        {**base, "Event reference": "same", "api_calls": "5", "storage_gb": "1.5"},
        {**base, "Event reference": "changed", "api_calls": "5", "storage_gb": "1.5"},
        {**base, "Event reference": "filled", "api_calls": "5", "storage_gb": ""},
    ]
    resent = [
        {**base, "Event reference": "same", "api_calls": "5", "storage_gb": "1.50"},
        {**base, "Event reference": "changed", "api_calls": "5", "storage_gb": "2"},
        {**base, "Event reference": "filled", "api_calls": "5", "storage_gb": "3"},
    ]
    first = write_csv(tmp_path / "first.csv", header, iter(first_rows))
    second = write_csv(tmp_path / "second.csv", header, iter(resent))
    env = {**pipeline_env, "METERPIPE_METERS": str(meters)}
    uploads = {u["name"]: u for u in published(env, first, second)}
    assert uploads["second.csv"]["duplicates"] == 6
    assert uploads["second.csv"]["conflicts"] == 2
    shown = _show(env, uploads["second.csv"]["reference"])
    details = sorted(shown["conflictDetails"], key=lambda d: d["rowNumber"])
    assert [d["rowNumber"] for d in details] == [3002, 4002]
    changed, filled = details
    assert changed["firstRetained"]
    assert changed["differences"] == [{"field": "quantity", "first": "1.5", "this": "2"}]
    assert not filled["firstFilled"]
    assert {"field": "quantity", "first": None, "this": "3"} in filled["differences"]
