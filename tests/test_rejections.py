"""Bad files and bad rows: clear reports, and nothing of a rejected file ingested."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from meterpipe.sample_data import HEADER, SampleSpec, write_sample_file
from tests.groundtruth import as_comparable, expected_totals
from tests.postgres import ON_EITHER_STORE
from tests.processes import all_final, run_cli, totals, wait_for

pytestmark = [pytest.mark.slow, ON_EITHER_STORE]
ACCOUNT = "0f8fad5b-d9cb-469f-a165-70867728950e"
DEVELOPER = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


def _row(quantity: str = "1.5", event_date: str = "2026-10-01T10:00:00Z", **cells: str) -> str:
    values = {
        "accountId": ACCOUNT, "developerId": DEVELOPER, "pricingUnit": "API_CALL",
        "customUnit": "", "quantity": quantity, "unitPrice": "", "description": "",
        "currency": "", "eventDate": event_date, "eventId": "", "billable": "true", **cells,
    }  # fmt: skip
    return ",".join(values[name] for name in HEADER)


def _write(path: Path, *rows: str) -> Path:
    path.write_text("\n".join([",".join(HEADER), *rows]) + "\n", encoding="utf-8")
    return path


def _publish_rejected(env: dict[str, str], path: Path, *args: str) -> dict[str, Any]:
    done = run_cli(env, "publish", str(path), "--json", *args, check=False)
    assert done.returncode == 1, done.stderr
    (upload,) = json.loads(done.stdout)
    assert upload["status"] == "Error"
    return dict(upload)


@pytest.mark.usefixtures("consumer")
def test_strict_mode_rejects_the_whole_file_and_names_each_bad_cell(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    bad = _write(
        tmp_path / "bad.csv",
        _row(),
        _row(quantity="-3"),
        _row(event_date="26-10-01T10:00:00+01:00"),
        _row(),
    )
    upload = _publish_rejected(pipeline_env, bad)
    errors = {(e["row"], e["column"], e["value"], e["reason"]) for e in upload["errors"]}
    assert (3, "quantity", "-3", "invalid_decimal") in errors
    assert (4, "eventDate", "26-10-01T10:00:00+01:00", "invalid_datetime") in errors
    assert upload["records"] == 4
    assert upload["accepted"] == 0
    # A later good upload is Done; the rejected file's two good rows never counted.
    good = _sample_after(tmp_path)
    run_cli(pipeline_env, "publish", str(good))
    wait_for(lambda: all_final(pipeline_env, 2), 120, "good upload Done")
    assert as_comparable(totals(pipeline_env)) == expected_totals(good)


def _sample_after(tmp_path: Path) -> Path:
    path = tmp_path / "good.csv"
    write_sample_file(path, SampleSpec(rows=200, seed=5, accounts=20))
    return path


@pytest.mark.usefixtures("consumer")
def test_skip_invalid_ingests_the_valid_rows_and_reports_the_rest(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    path = _write(
        tmp_path / "mixed.csv",
        _row(quantity="2.25"),
        _row(accountId="not-a-uuid"),
        _row(quantity="0.75", billable="FALSE"),
    )
    done = run_cli(pipeline_env, "publish", str(path), "--skip-invalid", "--json")
    assert json.loads(done.stdout)[0]["errors"][0]["row"] == 3
    (upload,) = wait_for(lambda: all_final(pipeline_env, 1), 120, "upload Done")
    assert upload["status"] == "Done"
    assert (upload["accepted"], upload["rejected"]) == (2, 1)
    (total,) = totals(pipeline_env)
    assert total["quantity"] == "3"
    assert total["billableQuantity"] == "2.25"
    assert total["events"] == 2


def test_bad_header_is_rejected_naming_the_column(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "header.csv"
    header = ",".join(name if name != "quantity" else "qty" for name in HEADER)
    path.write_text(header + "\n" + _row() + "\n", encoding="utf-8")
    upload = _publish_rejected(pipeline_env, path)
    (error,) = upload["errors"]
    assert error["reason"] == "bad_header"
    assert "quantity" in error["message"]
    assert "'qty'" in error["message"]


def test_non_utf8_file_is_rejected_with_that_reason(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes((",".join(HEADER) + "\n" + _row(description="café") + "\n").encode("latin-1"))
    upload = _publish_rejected(pipeline_env, path)
    (error,) = upload["errors"]
    assert error["reason"] == "not_utf8"


@pytest.mark.usefixtures("consumer")
def test_closed_period_rejects_late_usage_until_put_on_hold(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    late = _write(
        tmp_path / "late.csv",
        _row(event_date="2026-09-30T23:00:00-02:00"),  # 2026-10-01T01:00Z: October
        _row(event_date="2026-11-05T10:00:00Z", quantity="4"),
    )
    run_cli(pipeline_env, "periods", "close", "2026-10")
    upload = _publish_rejected(pipeline_env, late)
    assert [(e["row"], e["reason"]) for e in upload["errors"]] == [(2, "period_closed")]
    run_cli(pipeline_env, "periods", "hold", "2026-10")
    run_cli(pipeline_env, "publish", str(late))
    wait_for(lambda: all_final(pipeline_env, 2), 120, "upload Done")
    (total,) = totals(pipeline_env, "--period", "2026-10")
    assert (total["events"], total["quantity"]) == (1, "1.5")
    states = json.loads(run_cli(pipeline_env, "periods", "list", "--json").stdout)
    assert {"period": "2026-10", "state": "hold"} in [
        {k: row[k] for k in ("period", "state")} for row in states
    ]


def test_the_report_keeps_the_first_errors_of_a_file_of_many_chunks(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    # Chunks of 1 KiB (about six rows) are validated a chunk ahead of the spool: the cap
    # must still keep the file's first errors, in row order, and count every bad row.
    rows = [_row(quantity="-1") if n % 3 == 0 else _row() for n in range(60)]
    env = {**pipeline_env, "METERPIPE_CHUNK_BYTES": "1024", "METERPIPE_MAX_REPORT_ERRORS": "5"}
    upload = _publish_rejected(env, _write(tmp_path / "many.csv", *rows))
    bad_rows = [n + 2 for n in range(60) if n % 3 == 0]  # the header is row 1
    assert [(e["row"], e["reason"]) for e in upload["errors"]] == [
        (row, "invalid_decimal") for row in bad_rows[:5]
    ]
    assert (upload["records"], upload["errorCount"]) == (60, len(bad_rows))
