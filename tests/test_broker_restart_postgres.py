"""The embedded broker killed mid-load, with consumers in one group on PostgreSQL.

`meterpipe up` runs the embedded broker, the inbox watcher and one consumer; three more
`meterpipe consume` processes join its group over 6 partitions. While three files flow,
the broker is SIGKILLed: its memory (topics, messages, group) is lost. `up` restarts it
on the same port and publishes every upload not yet Done again; every consumer must
notice the new log (its stored offsets point into the old one) and read it from the
start. At the end the totals must equal the ground truth, every upload be Done, no
eventId be counted twice, and events counted before the kill be redeliveries after it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from meterpipe.sample_data import SampleSpec, write_sample_file
from tests.postgres import Member, assert_exactly_once, one
from tests.processes import all_final, log_lines, start_cli, stop, uploads, wait_for

pytestmark = pytest.mark.slow

ROWS = 15_000
FILES = 3
FROM_THE_START = -2  # librdkafka's OFFSET_BEGINNING, as the consumer logs it


def _bootstrap_of(log: Path) -> str | None:
    """The address `up` logs when its embedded broker listens."""
    for line in log_lines(log):
        found = re.fullmatch(r"embedded broker listening on (\S+)", line["message"])
        if found:
            return found.group(1)
    return None


def _redelivered(log: Path) -> int:
    """Events a consumer found already counted (same upload and row) in its committed batches."""
    return sum(line.get("redelivered", 0) for line in log_lines(log))


def _published_after_restart(log: Path) -> set[str]:
    """The uploads `up` published (again) after it restarted the broker.

    An upload still Processing right after the kill may yet end Done before the restart,
    from what the consumers had already fetched: it is never sent again, so none of its
    events can come back as a redelivery.
    """
    references: set[str] = set()
    restarted = False
    for line in log_lines(log):
        restarted = restarted or line["message"].startswith("embedded broker died")
        found = re.fullmatch(r"published .* as upload (\S+)", line["message"])
        if restarted and found:
            references.add(found.group(1))
    return references


def _counted(upload: dict[str, Any]) -> int:
    counted: int = upload["accepted"] + upload["duplicates"]
    return counted


def test_broker_killed_mid_load_is_restarted_and_unfinished_uploads_end_done(
    pg_pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    # Small batches: many commit points, so the kill lands with uploads part-counted.
    env = {**pg_pipeline_env, "METERPIPE_BATCH_MAX_EVENTS": "500"}
    up_env = {k: v for k, v in env.items() if k != "METERPIPE_BOOTSTRAP_SERVERS"}
    inbox, pid_file = Path(env["METERPIPE_INBOX"]), Path(env["METERPIPE_DATA_DIR"]) / "broker.pid"
    inbox.mkdir()
    files = [tmp_path / f"usage-{seed}.csv" for seed in range(FILES)]
    for seed, path in enumerate(files):
        write_sample_file(path, SampleSpec(rows=ROWS, seed=200 + seed, accounts=200))
    up = start_cli(up_env, tmp_path / "up.log", "up")
    members: list[Member] = []
    with psycopg.connect(env["METERPIPE_STORE_URL"], autocommit=True) as db:
        try:
            bootstrap = wait_for(lambda: _bootstrap_of(tmp_path / "up.log"), 60, "up's broker")
            env["METERPIPE_BOOTSTRAP_SERVERS"] = bootstrap
            members = [Member(env, tmp_path, f"c{i}") for i in range(3)]
            wait_for(lambda: all(m.logged("assigned partition") for m in members), 90, "3 members")
            for path in files:
                shutil.copy(path, inbox / f"{path.name}.part")
                (inbox / f"{path.name}.part").rename(inbox / path.name)

            counted = "SELECT count(*) FROM seen_events"
            wait_for(lambda: one(db, counted) > 0, 120, "first events counted")
            first_broker = int(pid_file.read_text())
            os.kill(first_broker, signal.SIGKILL)
            marks = [len(m.lines()) for m in members]
            unfinished = [u for u in uploads(env) if u["status"] == "Processing"]
            assert unfinished, "the load was over before the broker was killed"

            # Well below the producer's 120 s message timeout: a publish in flight at the kill
            # must be abandoned and started over, not wait for its messages to time out.
            done = wait_for(lambda: all_final(env, FILES), 100, "every upload final after restart")
            assert int(pid_file.read_text()) != first_broker
            assert all(m.process.poll() is None for m in members), "a consumer died"
            assert up.poll() is None, "up died"
            # Each standalone member read the new log from its start, whatever the store held.
            for member, mark in zip(members, marks, strict=True):
                assigned = [
                    line["offset"] for line in member.lines()[mark:]
                    if line["message"].startswith("assigned partition")
                ]  # fmt: skip
                assert FROM_THE_START in assigned, f"{member.name} kept offsets of the lost log"
            # Events counted before the kill came again in the new log and changed nothing.
            again = _published_after_restart(tmp_path / "up.log")
            if sum(_counted(u) for u in unfinished if u["reference"] in again):
                logs = [tmp_path / "up.log", *(m.log for m in members)]
                assert sum(_redelivered(log) for log in logs) > 0
        finally:
            for member in members:
                stop(member.process)
            stop(up)
        assert sorted(upload["name"] for upload in done) == sorted(path.name for path in files)
        assert_exactly_once(db, done, files, env, ROWS)
