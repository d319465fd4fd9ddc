"""SIGTERM stops `up` and `consume` within the shutdown timeout, and nothing is lost or doubled."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import Producer

from meterpipe.sample_data import SampleSpec, write_sample_file
from tests.groundtruth import as_comparable, expected_totals
from tests.postgres import fresh_database
from tests.processes import all_final, run_cli, start_cli, stop, totals, uploads, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.both_brokers]

TIMEOUT_S = 5
# Interpreter start-up is not part of it, but a loaded 2-core machine is slow to tear down.
SLACK_S = 5
LOG_LINES_SHOWN = 60  # of a process that did not stop in time


def _terminate(process: subprocess.Popen[bytes], log: Path) -> int:
    """SIGTERM `process`; its exit code, which must come within the timeout plus slack.

    A process that overstays is killed, and the end of its `log` shows where it was.
    """
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=TIMEOUT_S + SLACK_S)
    except subprocess.TimeoutExpired:
        stop(process)
        last_lines = "\n".join(log.read_text().splitlines()[-LOG_LINES_SHOWN:])
        raise AssertionError(
            f"still running {TIMEOUT_S + SLACK_S} s after SIGTERM; its log ends:\n{last_lines}"
        ) from None
    assert time.monotonic() - sent < TIMEOUT_S + SLACK_S
    return code


def _assigned(log: Path) -> bool:
    """The consumer holds its partitions.

    Tansu keeps a member that leaves during a group's very first join as the leader of the
    pending generation, and the next member then waits for it forever; the tests stop
    processes that are running, as operators do.
    """
    return "assigned partition" in log.read_text()


@pytest.fixture
def env(pipeline_env: dict[str, str]) -> dict[str, str]:
    """A short shutdown timeout, a fast inbox and small chunks, so a big file takes a while."""
    return {
        **pipeline_env,
        "METERPIPE_SHUTDOWN_TIMEOUT_S": str(TIMEOUT_S),
        "METERPIPE_POLL_INTERVAL_S": "0.1",
        "METERPIPE_CHUNK_BYTES": "65536",
    }


def test_up_stops_mid_publish_and_resumes_to_exact_totals(
    env: dict[str, str], tmp_path: Path
) -> None:
    inbox = Path(env["METERPIPE_INBOX"])
    processing = inbox / "processing"
    source = tmp_path / "big.csv"
    write_sample_file(source, SampleSpec(rows=100_000, seed=91, accounts=300))
    log = tmp_path / "up.log"
    first = start_cli(env, log, "up")
    try:
        wait_for(lambda: _assigned(log), 60, "the consumer to join its group")
        source.rename(inbox / "big.csv")
        wait_for(lambda: list(processing.iterdir()), 60, "big.csv to be claimed")
        assert _terminate(first, log) == 0, log.read_text()
    finally:
        stop(first)
    assert "interrupted by shutdown" in log.read_text(), "SIGTERM did not land mid-publish"
    assert [p.name.partition("--")[2] for p in processing.iterdir()] == ["big.csv"]
    second = start_cli(env, log, "up")
    try:
        (upload,) = wait_for(lambda: all_final(env, 1), 240, "upload final after restart")
        wait_for((inbox / "done" / "big.csv").exists, 60, "big.csv in done/")
        assert _terminate(second, log) == 0, log.read_text()
    finally:
        stop(second)
    assert upload["status"] == "Done"
    assert as_comparable(totals(env)) == expected_totals(inbox / "done" / "big.csv")


def test_consume_stops_mid_stream_and_resumes_to_exact_totals(
    env: dict[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "usage.csv"
    write_sample_file(source, SampleSpec(rows=30_000, seed=92, accounts=100))
    run_cli(env, "publish", str(source))
    consume_env = {**env, "METERPIPE_BATCH_MAX_EVENTS": "1000"}
    log = tmp_path / "consume.log"
    first = start_cli(consume_env, log, "consume")
    try:
        wait_for(lambda: "batch committed" in log.read_text(), 60, "a first batch committed")
        assert _terminate(first, log) == 0, log.read_text()
    finally:
        stop(first)
    (upload,) = uploads(env)
    assert upload["status"] == "Processing", "consumed everything before the SIGTERM"
    second = start_cli(consume_env, log, "consume")
    try:
        (upload,) = wait_for(lambda: all_final(env, 1), 120, "upload Done after restart")
    finally:
        stop(second)
    assert upload["status"] == "Done"
    assert as_comparable(totals(env)) == expected_totals(source)


def test_consume_stops_cleanly_while_its_store_is_unreachable(
    env: dict[str, str], tmp_path: Path
) -> None:
    """Retrying a lost PostgreSQL store must not keep a stopping consumer until the watchdog."""
    log = tmp_path / "consumer.log"
    with fresh_database() as (url, lock_out):
        process = start_cli({**env, "METERPIPE_STORE_URL": url}, log, "consume")
        try:
            wait_for(lambda: _assigned(log), 60, "partitions assigned")
            lock_out()
            # Any message makes the consumer ask the store for the billing periods.
            producer = Producer({"bootstrap.servers": env["METERPIPE_BOOTSTRAP_SERVERS"]})
            producer.produce(env["METERPIPE_TOPIC"], b"anything")
            assert producer.flush(30) == 0
            wait_for(lambda: "store unavailable, retrying" in log.read_text(), 60, "retrying")
            assert _terminate(process, log) == 0
        finally:
            stop(process)
    assert "stopped while waiting for the store" in log.read_text()
