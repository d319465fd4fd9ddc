"""The whole pipeline through the real CLI, a real broker and a real SQLite store."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from meterpipe.sample_data import SampleSpec, write_sample_file
from tests.groundtruth import as_comparable, expected_totals
from tests.processes import (
    METERPIPE,
    all_final,
    run_cli,
    start_cli,
    stop,
    totals,
    uploads,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.both_brokers]


def _sample(tmp_path: Path, rows: int, seed: int = 7) -> Path:
    path = tmp_path / f"usage-{seed}.csv"
    write_sample_file(path, SampleSpec(rows=rows, seed=seed, accounts=500))
    return path


@pytest.mark.usefixtures("consumer")
def test_totals_equal_ground_truth_for_100k_rows(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    """Duplicates counted once, empty eventIds assigned, every decimal exact."""
    path = _sample(tmp_path, 100_000)
    run_cli(pipeline_env, "publish", str(path))
    (upload,) = wait_for(lambda: all_final(pipeline_env, 1), 180, "upload Done")
    expected = expected_totals(path)
    assert upload["status"] == "Done"
    assert upload["records"] == 100_000
    assert upload["accepted"] == sum(row["events"] for row in expected)
    assert upload["accepted"] + upload["duplicates"] == 100_000
    assert upload["duplicates"] > 0
    assert upload["eventIdsAssigned"] > 0
    assert as_comparable(totals(pipeline_env)) == expected
    # Once the topic is idle the consumer folds the pending deltas into the totals table.
    wait_for(lambda: _pending_deltas(pipeline_env) == 0, 60, "pending totals folded")
    assert as_comparable(totals(pipeline_env)) == expected


def _pending_deltas(env: dict[str, str]) -> int:
    stats = json.loads(run_cli(env, "store", "stats", "--json").stdout)
    pending: int = stats["tables"]["total_deltas"]["rows"]
    return pending


@pytest.mark.usefixtures("consumer")
def test_same_file_twice_changes_nothing(pipeline_env: dict[str, str], tmp_path: Path) -> None:
    """The same bytes again are a duplicate upload; forced, dedupe still counts nothing twice."""
    path = _sample(tmp_path, 5_000, seed=11)
    run_cli(pipeline_env, "publish", str(path))
    (first,) = wait_for(lambda: all_final(pipeline_env, 1), 120, "first upload Done")
    run_cli(pipeline_env, "publish", str(path))
    second, _ = wait_for(lambda: all_final(pipeline_env, 2), 120, "second upload Done")
    assert second["duplicateOf"] == first["reference"]
    assert (second["status"], second["accepted"], second["records"]) == ("Done", 0, 5_000)
    run_cli(pipeline_env, "publish", str(path), "--force")
    forced, _, _ = wait_for(lambda: all_final(pipeline_env, 3), 120, "forced upload Done")
    assert forced["duplicateOf"] is None
    assert (forced["status"], forced["accepted"], forced["duplicates"]) == ("Done", 0, 5_000)
    assert as_comparable(totals(pipeline_env)) == expected_totals(path)


def test_sigkilled_consumer_restarts_to_identical_totals(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    """Killed mid-stream, a new consumer resumes from the store's offsets: exact totals."""
    path = _sample(tmp_path, 100_000, seed=23)
    log = tmp_path / "consumer.log"
    # Small batches make the stream long enough to be caught (and killed) in the middle.
    pipeline_env = {**pipeline_env, "METERPIPE_BATCH_MAX_EVENTS": "2000"}
    first = start_cli(pipeline_env, log, "consume")
    try:
        run_cli(pipeline_env, "publish", str(path))
        # The log, not the store through the CLI: a CLI call takes about a second under
        # load, as long as the whole stream may take.
        wait_for(lambda: "batch committed" in log.read_text(), 120, "consumer mid-stream")
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert uploads(pipeline_env)[0]["status"] == "Processing"
    finally:
        stop(first)
    second = start_cli(pipeline_env, log, "consume")
    try:
        (upload,) = wait_for(lambda: all_final(pipeline_env, 1), 180, "upload Done")
    finally:
        stop(second)
    assert upload["accepted"] + upload["duplicates"] == 100_000
    assert as_comparable(totals(pipeline_env)) == expected_totals(path)


@pytest.mark.usefixtures("consumer")
def test_stdin_upload_keyed_by_reference_is_idempotent(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    """Streamed twice under one reference: one upload, counted once."""
    path = _sample(tmp_path, 3_000, seed=41)
    for _ in range(2):
        with path.open("rb") as stdin:
            done = subprocess.run(
                [*METERPIPE, "publish", "-", "--reference", "stream-1"],
                stdin=stdin, env=pipeline_env, capture_output=True, timeout=300, check=False,
            )  # fmt: skip
        assert done.returncode == 0, done.stderr
    (upload,) = wait_for(lambda: all_final(pipeline_env, 1), 120, "upload Done")
    assert upload["reference"] == "stream-1"
    assert upload["name"] == "stdin"
    assert as_comparable(totals(pipeline_env)) == expected_totals(path)
