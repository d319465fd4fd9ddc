"""`meterpipe bench` runs every phase and checks its totals (figures are not asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.processes import run_cli

pytestmark = pytest.mark.slow


def test_bench_reports_every_phase_and_a_matching_ground_truth(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    done = run_cli(pipeline_env, "bench", "--rows", "3000", "--work-dir", str(tmp_path), "--json")
    report = json.loads(done.stdout)
    assert report["totalsMatchGroundTruth"] is True
    names = [phase["name"] for phase in report["phases"]]
    assert names == [
        "ceiling: produce", "ceiling: consume", "publish", "consume (SQLite)", "end to end",
    ]  # fmt: skip
    ceiling_produce, ceiling_consume, publish, consume, end_to_end = report["phases"]
    for timed in (ceiling_produce, ceiling_consume, publish, end_to_end):
        assert timed["seconds"] > 0
        assert timed["events"] == 3000
    # Consumption is timed from its first committed batch, which may already be the last.
    assert 0 <= consume["events"] < 3000
    assert publish["peak_rss_mb"] > 0
