"""Solvimon files through the real CLI, a real broker and a real store; templates and examples.

The ground truth is computed from the CSV with the csv module and Decimal: every non-empty
meter value is one event of (customer reference, meter).
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from meterpipe.cli_template import template
from tests.postgres import ON_EITHER_STORE
from tests.processes import all_final, run_cli, totals, wait_for
from tests.rows import VALID_CELLS

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).parents[1] / "examples"
METERS_TOML = 'values = ["api_calls", "storage_gb"]\nproperties = ["region", "plan"]\n'
FIXED = [
    "Customer reference",
    "Pricing plan subscription reference",
    "Event reference",
    "Timestamp",
]
VALUES = ["api_calls", "storage_gb"]


@pytest.fixture
def meters(tmp_path: Path) -> Path:
    path = tmp_path / "meters.toml"
    path.write_text(METERS_TOML, encoding="utf-8")
    return path


def solvimon_rows(count: int, seed: int) -> Iterator[dict[str, str]]:
    """Realistic rows: mixed-case customers, sometimes one meter, no timestamp, no property."""
    rng = random.Random(seed)
    for n in range(count):
        api_calls, whole, places = (
            str(rng.randrange(10**6)),
            rng.randrange(10**4),
            rng.randrange(13),
        )
        storage = f"{whole}.{rng.randrange(10**places):0{places}d}" if places else str(whole)
        filled = rng.choice([(api_calls, storage), (api_calls, ""), ("", storage)])
        yield {
            "Customer reference": f"{rng.choice(['Cust', 'cust', 'ACME'])}-{rng.randrange(40)}",
            "Pricing plan subscription reference": rng.choice(["", "sub-pro", "sub-lab"]),
            "Event reference": f"evt-{seed}-{n}",
            "Timestamp": rng.choice(["", "2026-10-01T08:15:00+02:00", "2026-10-31T23:59:59Z"]),
            "api_calls": filled[0],
            "storage_gb": filled[1],
            "region": rng.choice(["", "eu-west", "us-east"]),
            "plan": rng.choice(["", "pro", 'quoted "plan"']),
        }


def write_csv(path: Path, header: list[str], rows: Iterator[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return path


def expected_solvimon_totals(*paths: Path) -> dict[tuple[str, str], tuple[int, Decimal]]:
    """(events, quantity) per (customer reference, meter), straight from the CSVs in order:
    an Event reference counts (every meter value it fills) the first time only."""
    sums: dict[tuple[str, str], tuple[int, Decimal]] = {}
    references: set[str] = set()
    for path in paths:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
        for row in rows:
            if row["Event reference"] in references:
                continue
            references.add(row["Event reference"])
            for meter in VALUES:
                if row[meter]:
                    key = (row["Customer reference"], meter)
                    events, quantity = sums.get(key, (0, Decimal(0)))
                    sums[key] = (events + 1, quantity + Decimal(row[meter]))
    return sums


def solvimon_totals(env: dict[str, str]) -> dict[tuple[str, str], tuple[int, Decimal]]:
    found: dict[tuple[str, str], tuple[int, Decimal]] = {}
    for row in totals(env):
        assert row["customUnit"] is None
        assert row["billableQuantity"] == row["quantity"]
        found[(row["accountId"], row["pricingUnit"])] = (row["events"], Decimal(row["quantity"]))
    return found


def published(env: dict[str, str], *paths: Path) -> list[dict[str, Any]]:
    """Publish each file, then wait until every upload is final; newest first."""
    for path in paths:
        run_cli(env, "publish", str(path))
    return wait_for(lambda: all_final(env, len(paths)), 120, "uploads final")


def cleanly_done(upload: dict[str, Any]) -> bool:
    return (upload["status"], upload["errorCount"], upload["rejected"]) == ("Done", 0, 0)


@ON_EITHER_STORE
@pytest.mark.usefixtures("consumer")
def test_solvimon_totals_per_meter_equal_the_ground_truth(
    pipeline_env: dict[str, str], tmp_path: Path, meters: Path
) -> None:
    path = write_csv(
        tmp_path / "solvimon.csv", [*FIXED, *VALUES, "region", "plan"], solvimon_rows(3000, 5)
    )
    env = {**pipeline_env, "METERPIPE_METERS": str(meters)}
    (upload,) = published(env, path)
    expected = expected_solvimon_totals(path)
    assert cleanly_done(upload)
    assert upload["records"] == 3000
    assert upload["accepted"] == sum(events for events, _ in expected.values()) > 3000
    assert {account for account, _ in expected} >= {"Cust-1", "cust-1", "ACME-1"}
    assert solvimon_totals(env) == expected


@ON_EITHER_STORE
@pytest.mark.usefixtures("consumer")
def test_an_event_reference_sent_again_counts_none_of_its_meter_values(
    pipeline_env: dict[str, str], tmp_path: Path, meters: Path
) -> None:
    """The second file re-sends every reference of the first, now with both meters filled
    and other quantities: none of it counts. Batches of 7 split rows' meter values."""
    header = [*FIXED, *VALUES, "region", "plan"]
    first = write_csv(tmp_path / "first.csv", header, solvimon_rows(2000, 11))
    with first.open(newline="", encoding="utf-8") as handle:
        resent = [
            {**row, "api_calls": "5", "storage_gb": "7.25", "plan": "changed"}
            for row in csv.DictReader(handle)
        ]
    fresh = list(solvimon_rows(300, 12))
    second = write_csv(tmp_path / "second.csv", header, iter(resent[::2] + fresh))
    env = {**pipeline_env, "METERPIPE_METERS": str(meters), "METERPIPE_BATCH_MAX_EVENTS": "7"}
    uploads = published(env, first, second)
    expected = expected_solvimon_totals(first, second)
    assert all(cleanly_done(upload) for upload in uploads)
    by_name = {upload["name"]: upload for upload in uploads}
    resent_values = 2 * len(resent[::2])
    fresh_values = sum(bool(row[meter]) for row in fresh for meter in VALUES)
    assert by_name["second.csv"]["duplicates"] == resent_values
    assert by_name["second.csv"]["accepted"] == fresh_values
    assert solvimon_totals(env) == expected


def fill_template(path: Path, rows: list[dict[str, str | None]]) -> list[str]:
    """Append rows under the template's header; return that header."""
    with path.open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle))
    with path.open("a", encoding="utf-8", newline="") as handle:
        csv.DictWriter(handle, fieldnames=header).writerows(rows)
    return header


@ON_EITHER_STORE
@pytest.mark.usefixtures("consumer")
def test_both_templates_filled_in_are_accepted(
    pipeline_env: dict[str, str], tmp_path: Path, meters: Path
) -> None:
    runner = CliRunner()
    appdirect, solvimon = tmp_path / "appdirect.csv", tmp_path / "solvimon.csv"
    for args in (
        ["--format", "appdirect", "-o", str(appdirect)],
        ["--format", "solvimon", "--meters", str(meters), "-o", str(solvimon)],
    ):
        result = runner.invoke(template, args)
        assert result.exit_code == 0, result.output
    rows = [{**VALID_CELLS, "eventId": f"tpl-{n}"} for n in range(3)]
    assert fill_template(appdirect, rows) == list(VALID_CELLS)
    header = fill_template(solvimon, [dict(row) for row in solvimon_rows(4, 9)])
    assert header == [*FIXED, *VALUES, "region", "plan"]
    env = {**pipeline_env, "METERPIPE_METERS": str(meters)}
    uploads = published(env, appdirect, solvimon)
    assert all(cleanly_done(upload) for upload in uploads)
    assert {u["name"]: u["records"] for u in uploads} == {"appdirect.csv": 3, "solvimon.csv": 4}


@ON_EITHER_STORE
@pytest.mark.usefixtures("consumer")
def test_the_example_files_publish_without_errors(pipeline_env: dict[str, str]) -> None:
    env = {**pipeline_env, "METERPIPE_METERS": str(EXAMPLES / "solvimon-meters.toml")}
    uploads = published(env, EXAMPLES / "appdirect-usage.csv", EXAMPLES / "solvimon-usage.csv")
    assert all(cleanly_done(upload) for upload in uploads)
    assert {u["name"]: u["accepted"] for u in uploads} == {
        "appdirect-usage.csv": 6,
        "solvimon-usage.csv": 9,
    }


def test_the_template_command_refuses_to_overwrite_and_needs_meters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("METERPIPE_METERS", raising=False)
    runner = CliRunner()
    existing = tmp_path / "usage.csv"
    existing.write_text("mine\n", encoding="utf-8")
    refused = runner.invoke(template, ["--format", "appdirect", "-o", str(existing)])
    assert refused.exit_code == 1
    assert "exists already" in refused.output
    assert existing.read_text(encoding="utf-8") == "mine\n"
    needs_meters = runner.invoke(template, ["--format", "solvimon"])
    assert needs_meters.exit_code == 2
    assert "METERPIPE_METERS" in needs_meters.output
    printed = runner.invoke(template, ["--format", "appdirect"])
    assert printed.output.splitlines() == [",".join(VALID_CELLS)]
    assert "METERPIPE_METERS" in runner.invoke(template, ["--help"]).output
