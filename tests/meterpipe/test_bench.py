"""`meterpipe bench` runs every phase and checks its totals (figures are not asserted)."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import pytest

from consumers.store import open_store
from meterpipe.bench import Phase, encoded_event_sample, median_phases
from meterpipe.sample_data import SampleSpec, write_sample_file
from meterpipe.settings import StoreSettings
from tests.postgres import admin_connection, postgres_url
from tests.processes import run_cli
from tests.topics import read_topic

pytestmark = pytest.mark.slow


def test_bench_reports_every_phase_and_a_matching_ground_truth(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    done = run_cli(pipeline_env, "bench", "--rows", "3000", "--work-dir", str(tmp_path), "--json",
                   "--http-body-mb", "4")  # fmt: skip
    report = json.loads(done.stdout)
    _assert_every_phase_ran(report)
    (receive,) = [phase for phase in report["phases"] if phase["name"].startswith("HTTP receive")]
    assert receive["name"] == "HTTP receive 4 MiB (RSS over idle)"
    assert receive["seconds"] > 0
    assert receive["peak_rss_mb"] >= 0
    # The textbook pipeline ran on the same rows (its totals matched, or the run failed).
    (textbook,) = [phase for phase in report["phases"] if phase["name"].startswith("textbook")]
    assert textbook["events"] == 3000
    end_to_end = next(phase for phase in report["phases"] if phase["name"] == "end to end")
    ratio = end_to_end["events_per_s"] / textbook["events_per_s"]
    assert report["endToEndOverTextbook"] == round(ratio, 1)


def test_bench_runs_again_in_the_same_work_dir_and_repeats_its_rounds(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    for repeat in ("1", "2"):
        done = run_cli(pipeline_env, "bench", "--rows", "1000", "--work-dir", str(tmp_path),
                       "--json", "--repeat", repeat, "--http-body-mb", "0",
                       "--textbook-rows", "0")  # fmt: skip
        # A run or round reusing an earlier one's store would publish a duplicate upload
        # (no events) or fail on its inbox.
        report = json.loads(done.stdout)
        _assert_every_phase_ran(report, rows=1000)
        assert len(report["rounds"]) == int(repeat)
        assert report["endToEndOverTextbook"] is None  # not measured
        for phases in report["rounds"]:
            _assert_every_phase_ran({**report, "phases": phases}, rows=1000)
        # Each phase shown is one of the rounds' measurements of it, not a blend.
        for index, shown in enumerate(report["phases"]):
            measured = [phases[index] for phases in report["rounds"]]
            assert {**shown, "events_per_s_range": None} in [
                {**phase, "events_per_s_range": None} for phase in measured
            ]
    assert len(list(tmp_path.glob("run-*"))) == 2
    assert len(list(tmp_path.glob("run-*/round-*"))) == 3


def test_the_ceiling_sends_events_like_the_publishers(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "sample.csv"
    write_sample_file(source, SampleSpec(rows=2_000))
    run_cli(pipeline_env, "publish", str(source))
    sent = read_topic(pipeline_env["METERPIPE_BOOTSTRAP_SERVERS"], pipeline_env["METERPIPE_TOPIC"],
                      2_000)  # fmt: skip
    published = [message.value() or b"" for message in sent]
    sample = encoded_event_sample(source)
    # The sample spans the whole small file; only the upload's reference and key differ.
    assert sorted(map(len, sample)) == sorted(map(len, published))
    assert min(map(len, sample)) > source.stat().st_size / 2_000
    # Compressed, as the producer does, they shrink alike (random bytes would not shrink).
    assert _compressed_share(sample) == pytest.approx(_compressed_share(published), abs=0.05)
    assert _compressed_share(sample) < 0.8


def _compressed_share(values: list[bytes]) -> float:
    joined = b"".join(values)
    return len(zlib.compress(joined)) / len(joined)


def _assert_every_phase_ran(report: dict[str, Any], rows: int = 3000) -> None:
    assert report["totalsMatchGroundTruth"] is True
    names = [phase["name"] for phase in report["phases"]][:6]
    assert names == [
        "ceiling: produce", "ceiling: consume", "publish", "consume (SQLite)", "end to end",
        "end to end (HTTP)",
    ]  # fmt: skip
    ceiling_produce, ceiling_consume, publish, consume, end_to_end, http = report["phases"][:6]
    for timed in (ceiling_produce, ceiling_consume, publish, end_to_end, http):
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
        "--prefill", "30000", "--store-url", postgres_url(), "--consumers", "2",
        "--http-body-mb", "0", "--textbook-rows", "500",
    )  # fmt: skip
    report = json.loads(done.stdout)
    # Every store's totals (SQLite, prefilled SQLite, PostgreSQL) matched the ground truth.
    assert report["totalsMatchGroundTruth"] is True
    names = [phase["name"] for phase in report["phases"]][4:]
    assert names == [
        "end to end", "end to end (HTTP)", "textbook: end to end",
        "consume (SQLite, 30,000 ids stored)",
        "consume (PostgreSQL, 2 consumers)",
    ]  # fmt: skip
    stores = tmp_path.glob("run-*/round-1/scenario-*/data/*.sqlite3")
    (prefilled,) = [path.parent for path in stores]
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


def _phase(name: str, rate: float, seconds: float) -> Phase:
    return Phase(name, 1000, seconds, rate, 100.0 + rate / 100, rate / 1000)


def test_the_median_round_of_each_phase_is_shown_whole_with_the_range() -> None:
    rounds = [
        [_phase("publish", 300.0, 3.3), _phase("consume", 500.0, 2.0)],
        [_phase("publish", 100.0, 10.0), _phase("consume", 700.0, 1.4)],
        [_phase("publish", 200.0, 5.0), _phase("consume", 600.0, 1.7)],
    ]
    publish, consume = median_phases(rounds)
    # Each phase's middle rate may come from a different round; all its figures come along.
    assert publish == Phase("publish", 1000, 5.0, 200.0, 102.0, 0.2, (100.0, 300.0))
    assert (consume.seconds, consume.events_per_s_range) == (1.7, (500.0, 700.0))
    # Of two middles, the lower: a slow machine's figures are not flattered.
    assert median_phases(rounds[:2])[0].events_per_s == 100.0
    # One round is shown as measured, with no range.
    assert median_phases(rounds[:1]) == rounds[0]
