"""`meterpipe up` as an operator runs it: drop a file in the inbox, scrape the metrics."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import urllib.request
import uuid
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pytest

from meterpipe.sample_data import SampleSpec, write_sample_file
from tests.groundtruth import as_comparable, expected_totals
from tests.processes import all_final, metrics_port, start_cli, stop, totals, wait_for

pytestmark = pytest.mark.slow


def _scrape(port: int) -> dict[str, float]:
    """Every sample of /metrics as {'name{labels}': value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        match = re.fullmatch(r"(\S+) (\S+)", line)
        if match and not line.startswith("#"):
            samples[match.group(1)] = float(match.group(2))
    return samples


@pytest.mark.parametrize("embedded", [False, True], ids=["cluster", "embedded-broker"])
def test_inbox_file_is_ingested_and_metrics_match_the_run(
    pipeline_env: dict[str, str], tmp_path: Path, embedded: bool
) -> None:
    """With a configured cluster, and with `up` running its own broker (`make run`)."""
    env = dict(pipeline_env)  # METERPIPE_METRICS_PORT=0: the port is read from the log
    if embedded:
        del env["METERPIPE_BOOTSTRAP_SERVERS"]
    inbox = Path(env["METERPIPE_INBOX"])
    inbox.mkdir()
    source = tmp_path / "october.csv"
    write_sample_file(source, SampleSpec(rows=20_000, seed=3, accounts=100))
    (inbox / ".hidden.csv").write_text("ignored", encoding="utf-8")
    process = start_cli(env, tmp_path / "up.log", "up")
    try:
        port = metrics_port(process, tmp_path / "up.log")
        shutil.copy(source, inbox / "october.csv.part")
        (inbox / "october.csv.part").rename(inbox / "october.csv")
        (upload,) = wait_for(lambda: all_final(env, 1), 180, "upload Done")
        wait_for((inbox / "done" / "october.csv").exists, 30, "file moved to done/")
        metrics = _scrape(port)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as ready:
            assert json.loads(ready.read()) == {"ready": True, "waitingFor": [], "errors": {}}
    finally:
        stop(process)
    expected = expected_totals(source)
    accepted = sum(row["events"] for row in expected)
    assert upload["status"] == "Done"
    assert as_comparable(totals(env)) == expected
    assert metrics["meterpipe_rows_read_total"] == 20_000
    assert metrics["meterpipe_events_published_total"] == 20_000
    assert metrics["meterpipe_events_consumed_total"] >= 20_000
    assert metrics["meterpipe_events_accepted_total"] == accepted
    assert metrics["meterpipe_events_duplicate_total"] == 20_000 - accepted
    assert metrics["meterpipe_event_ids_assigned_total"] == upload["eventIdsAssigned"]
    assert metrics['meterpipe_uploads{status="Done"}'] == 1
    assert metrics["meterpipe_batch_duration_seconds_count"] >= 1
    assert (inbox / ".hidden.csv").exists()


def test_embedded_broker_restart_loses_nothing(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    """The broker dies with the upload unfinished: it is restarted and the upload re-published."""
    env = {k: v for k, v in pipeline_env.items() if k != "METERPIPE_BOOTSTRAP_SERVERS"}
    inbox, data = Path(env["METERPIPE_INBOX"]), Path(env["METERPIPE_DATA_DIR"])
    inbox.mkdir()
    source = tmp_path / "big.csv"
    write_sample_file(source, SampleSpec(rows=100_000, seed=31, accounts=300))
    process = start_cli(env, tmp_path / "up.log", "up")
    try:
        pid_file = data / "broker.pid"
        wait_for(pid_file.exists, 60, "embedded broker pid file")
        first_broker = int(pid_file.read_text())
        shutil.copy(source, inbox / "big.csv")
        # Killed within a poll of the claim, while the file is still being checked: asking
        # the CLI instead takes long enough for a fast pipeline to finish the upload first.
        claimed = inbox / "processing"
        wait_for(lambda: any(claimed.glob("*--big.csv")), 60, "upload claimed")
        os.kill(first_broker, signal.SIGKILL)
        (upload,) = wait_for(lambda: all_final(env, 1), 240, "upload Done after broker restart")
        assert int(pid_file.read_text()) != first_broker
    finally:
        stop(process)
    assert upload["status"] == "Done"
    assert as_comparable(totals(env)) == expected_totals(source)


def _damaged_copy(source: Path, target: Path, bad_rows: int) -> None:
    """`source` with every tenth data row made bad (up to `bad_rows`), every third of those
    in three cells (account, quantity, date) and the others in one (quantity)."""
    with source.open(newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    column = {name: header.index(name) for name in ("accountId", "quantity", "eventDate")}
    for n, row in enumerate(rows[::10][:bad_rows]):
        row[column["quantity"]] = "lots"
        if n % 3 == 0:
            row[column["accountId"]] = "acct-7"
            row[column["eventDate"]] = "yesterday"
    with target.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])


def _is_bad(row: dict[str, str]) -> bool:
    """Whether a row's account, quantity or date does not parse (the damage `_damaged_copy`
    does), judged by the standard library alone."""
    try:
        uuid.UUID(row["accountId"])
        Decimal(row["quantity"])
        datetime.fromisoformat(row["eventDate"])
    except (ValueError, InvalidOperation):
        return True
    return False


def test_rows_invalid_counts_each_bad_row_once_past_the_report_limit(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    """30 bad rows, 10 of them bad in 3 cells, a report limit of 5, chunks of a few rows:
    the metric counts 30, neither the 5 errors reported nor the 50 bad cells."""
    env = {**pipeline_env, "METERPIPE_MAX_REPORT_ERRORS": "5", "METERPIPE_CHUNK_BYTES": "4096"}
    inbox = Path(env["METERPIPE_INBOX"])
    inbox.mkdir()
    source = tmp_path / "clean.csv"
    write_sample_file(source, SampleSpec(rows=400, seed=9, accounts=20))
    damaged = tmp_path / "damaged.csv"
    _damaged_copy(source, damaged, bad_rows=30)
    with damaged.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    bad = sum(_is_bad(row) for row in rows)
    process = start_cli(env, tmp_path / "up.log", "up")
    try:
        port = metrics_port(process, tmp_path / "up.log")
        shutil.copy(damaged, inbox / "damaged.csv.part")
        (inbox / "damaged.csv.part").rename(inbox / "damaged.csv")
        (upload,) = wait_for(lambda: all_final(env, 1), 180, "upload rejected")
        metrics = _scrape(port)
    finally:
        stop(process)
    assert bad == 30
    assert upload["status"] == "Error"
    assert (upload["errorCount"], len(upload["errors"])) == (bad, 5)
    invalid = {
        name: value for name, value in metrics.items()
        if name.startswith("meterpipe_rows_invalid_total{")
    }  # fmt: skip
    assert sum(invalid.values()) == bad, invalid
    assert metrics["meterpipe_rows_read_total"] == len(rows)
