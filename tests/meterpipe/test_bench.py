"""`meterpipe bench` runs every phase and checks its totals (figures are not asserted)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from consumers.store import open_store
from meterpipe.bench import encoded_event_bytes
from meterpipe.sample_data import SampleSpec, write_sample_file
from meterpipe.settings import StoreSettings
from tests.postgres import POSTGRES_URL, admin_connection
from tests.processes import run_cli
from tests.topics import read_topic

pytestmark = pytest.mark.slow


def test_bench_reports_every_phase_and_a_matching_ground_truth(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    done = run_cli(pipeline_env, "bench", "--rows", "3000", "--work-dir", str(tmp_path), "--json")
    _assert_every_phase_ran(json.loads(done.stdout))


def test_bench_runs_again_in_the_same_work_dir(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    for _ in range(2):
        done = run_cli(
            pipeline_env, "bench", "--rows", "1000", "--work-dir", str(tmp_path), "--json"
        )
        # A second run reusing the first one's store would publish a duplicate upload (no
        # events) or fail on its inbox.
        _assert_every_phase_ran(json.loads(done.stdout), rows=1000)
    assert len(list(tmp_path.glob("run-*"))) == 2


def test_the_ceiling_moves_messages_of_the_size_the_publisher_sends(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "sample.csv"
    write_sample_file(source, SampleSpec(rows=2_000))
    run_cli(pipeline_env, "publish", str(source))
    sent = read_topic(pipeline_env["METERPIPE_BOOTSTRAP_SERVERS"], pipeline_env["METERPIPE_TOPIC"],
                      2_000)  # fmt: skip
    mean = sum(len(message.value() or b"") for message in sent) / len(sent)
    # Rounded down; well over the CSV row size (what the ceiling used to send).
    assert encoded_event_bytes(source) == int(mean)
    assert int(mean) > source.stat().st_size / 2_000 * 1.1


def _assert_every_phase_ran(report: dict[str, Any], rows: int = 3000) -> None:
    assert report["totalsMatchGroundTruth"] is True
    names = [phase["name"] for phase in report["phases"]]
    assert names == [
        "ceiling: produce", "ceiling: consume", "publish", "consume (SQLite)", "end to end",
    ]  # fmt: skip
    ceiling_produce, ceiling_consume, publish, consume, end_to_end = report["phases"]
    for timed in (ceiling_produce, ceiling_consume, publish, end_to_end):
        assert timed["seconds"] > 0
        assert timed["events"] == rows
    # Consumption is timed from its first committed batch, which may already be the last.
    assert 0 <= consume["events"] < rows
    assert publish["peak_rss_mb"] > 0


def test_bench_scenarios_consume_on_postgres_and_on_a_prefilled_store(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    done = run_cli(
        pipeline_env, "bench", "--rows", "2000", "--work-dir", str(tmp_path), "--json",
        "--prefill", "30000", "--store-url", POSTGRES_URL, "--consumers", "2",
    )  # fmt: skip
    report = json.loads(done.stdout)
    # Every store's totals (SQLite, prefilled SQLite, PostgreSQL) matched the ground truth.
    assert report["totalsMatchGroundTruth"] is True
    names = [phase["name"] for phase in report["phases"]][4:]
    assert names == [
        "end to end", "consume (SQLite, 30,000 ids stored)", "consume (PostgreSQL, 2 consumers)",
    ]  # fmt: skip
    (prefilled,) = [path.parent for path in tmp_path.glob("run-*/scenario-*/data/*.sqlite3")]
    store = open_store(StoreSettings(data_dir=prefilled))
    try:
        seen = store.stats().tables["seen_events"].rows
    finally:
        store.close()
    assert seen >= 30_000 + 1_000  # the earlier ids and this file's distinct ones
    # The PostgreSQL scenario's schema is dropped afterwards.
    with admin_connection() as admin:
        left = admin.execute(
            "SELECT count(*) FROM information_schema.schemata"
            " WHERE schema_name LIKE 'meterpipe_bench_%'"
        ).fetchone()
    assert left == (0,)
