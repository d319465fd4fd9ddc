"""Scale-out faults on PostgreSQL: consumers in one group over 6 partitions, a load flowing.

One run goes through every fault a deployment sees, each where it bites: a consumer
SIGKILLed inside its batch transaction, a consumer added mid-run, one SIGSTOPped past the
session timeout while it holds fetched messages (it must be fenced when it resumes), the
producer SIGKILLed mid-file and the upload published again, and every consumer's
PostgreSQL connection terminated. At the end the totals must equal the ground truth,
every upload be Done, and no eventId be counted twice.
"""

from __future__ import annotations

import json
import signal
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from meterpipe.sample_data import SampleSpec, write_sample_file
from tests.groundtruth import as_comparable, expected_totals
from tests.postgres import schema_of, schema_url
from tests.processes import all_final, run_cli, start_cli, stop, totals, wait_for

pytestmark = pytest.mark.slow

PARTITIONS = set(range(6))
ROWS = 30_000
# Slows one producer to a few thousand events/s, so that its kill lands mid-file.
SLOW_PRODUCER = '{"batch.num.messages": "1", "max.in.flight.requests.per.connection": "1"}'
Db = psycopg.Connection[Any]


class Member:
    """One `meterpipe consume` process, its log and its PostgreSQL client name."""

    def __init__(self, env: dict[str, str], directory: Path, name: str) -> None:
        schema = schema_of(env["METERPIPE_STORE_URL"])
        self.name = f"{schema}-{name}"
        self.log = directory / f"{name}.log"
        # The URL goes on the command line: that is what --store-url is for.
        url = schema_url(schema, application_name=self.name)
        self.process = start_cli(env, self.log, "consume", "--store-url", url)

    def lines(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far."""
        if not self.log.exists():
            return []
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def assignments(self, since: int = 0) -> list[tuple[datetime, int]]:
        """(time, partition) of each assignment logged after the first `since` lines."""
        return [
            (datetime.fromisoformat(line["time"]), line["partition"])
            for line in self.lines()[since:]
            if line["message"].startswith("assigned partition")
        ]

    def partitions(self) -> set[int]:
        """Its latest assignment: a rebalance logs one line per partition, all at once."""
        found = self.assignments()
        latest = max((when for when, _ in found), default=None)
        return {p for when, p in found if latest and latest - when < timedelta(seconds=1)}

    def logged(self, text: str) -> bool:
        return any(text in line["message"] for line in self.lines())

    def backend_state(self, db: Db) -> str | None:
        """Its PostgreSQL session's state: idle, active, idle in transaction, or None."""
        row = db.execute(
            "SELECT state FROM pg_stat_activity WHERE application_name = %s", (self.name,)
        ).fetchone()
        return row[0] if row else None


def _rebalanced_onto(members: list[Member], timeout: float, what: str) -> None:
    """Wait until these members alone have been given every partition, from now on."""
    marks = [len(member.lines()) for member in members]

    def covered() -> bool:
        given = (p for m, n in zip(members, marks, strict=True) for _, p in m.assignments(n))
        return set(given) == PARTITIONS

    wait_for(covered, timeout, what)


def _one(db: Db, sql: str, *params: Any) -> Any:
    """The single value a query returns."""
    row = db.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def _offsets(db: Db) -> dict[int, int]:
    return dict(db.execute("SELECT partition, next_offset FROM offsets").fetchall())


def _publish(env: dict[str, str], directory: Path, path: Path, ref: str) -> subprocess.Popen[bytes]:
    return start_cli(
        env, directory / f"publish-{ref}.log", "publish", str(path), "--reference", ref,
        "--store-url", env["METERPIPE_STORE_URL"],
    )  # fmt: skip


def test_consumer_and_producer_faults_on_postgres_leave_exact_totals(
    pg_pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    # Small batches: many commit points, and a load that outlasts the faults.
    env = {**pg_pipeline_env, "METERPIPE_BATCH_MAX_EVENTS": "500"}
    files = [tmp_path / f"usage-{seed}.csv" for seed in range(4)]
    for seed, path in enumerate(files):
        write_sample_file(path, SampleSpec(rows=ROWS, seed=100 + seed, accounts=300))
    members = [Member(env, tmp_path, f"c{i}") for i in range(3)]
    db = psycopg.connect(env["METERPIPE_STORE_URL"], autocommit=True)
    publishers: list[subprocess.Popen[bytes]] = []
    try:
        wait_for(lambda: all(m.logged("assigned partition") for m in members), 90, "3 members")
        publishers = [_publish(env, tmp_path, files[i], f"r{i}") for i in (0, 1)]
        slow = {**env, "METERPIPE_CLIENT_OVERRIDES": SLOW_PRODUCER}
        producer = _publish(slow, tmp_path, files[2], "r2")

        # (d) The producer dies mid-file: some of its events already counted, the upload
        # not marked published.
        counted = "SELECT count(*) FROM seen_events WHERE upload_ref = %s"
        wait_for(lambda: _one(db, counted, "r2") > 0, 120, "first events of r2 counted")
        producer.send_signal(signal.SIGKILL)
        producer.wait()
        assert _one(db, "SELECT expected FROM uploads WHERE reference = 'r2'") is None

        # (a) A member dies inside its batch transaction; (b) a new member joins.
        killed = members[0]
        wait_for(
            lambda: killed.backend_state(db) in ("active", "idle in transaction"), 60,
            "c0 inside a batch",
        )  # fmt: skip
        killed.process.send_signal(signal.SIGKILL)
        killed.process.wait()
        members.append(Member(env, tmp_path, "c3"))
        live = members[1:]
        _rebalanced_onto(live, 90, "partitions shared by c1, c2, c3")

        # (c) With a fresh backlog on every partition, a member is frozen between batches
        # past the session timeout; the others take its partitions and commit past it.
        assert run_cli(env, "publish", str(files[3]), "--reference", "r3").returncode == 0
        zombie, others = members[1], members[2:]
        wait_for(lambda: zombie.backend_state(db) == "idle", 60, "c1 between batches")
        zombie.process.send_signal(signal.SIGSTOP)
        frozen_at, held = _offsets(db), zombie.partitions()
        _rebalanced_onto(others, 90, "c1's partitions taken over")
        wait_for(
            lambda: all(_offsets(db)[p] > frozen_at.get(p, -1) for p in held), 90,
            f"partitions {held} committed past the frozen member",
        )  # fmt: skip
        zombie.process.send_signal(signal.SIGCONT)
        wait_for(lambda: zombie.logged("batch discarded"), 60, "the zombie's batch fenced")

        # (d) The upload is resumed by publishing it again under its reference.
        publishers.append(_publish(env, tmp_path, files[2], "r2"))

        # (e) Every consumer's connection is terminated mid-run; they reconnect and go on.
        wait_for(lambda: all(m.backend_state(db) for m in live), 60, "consumers connected")
        terminated = _one(
            db, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = ANY(%s)", [m.name for m in live],
        )  # fmt: skip
        assert terminated == len(live)
        done = wait_for(lambda: all_final(env, 4), 240, "every upload final")
        assert [p.wait(timeout=120) for p in publishers] == [0, 0, 0]
        assert all(m.process.poll() is None for m in live), "a consumer died"
        assert any(m.logged("store unavailable, retrying") for m in live)
    finally:
        for process in publishers:
            stop(process)
        for member in members:
            member.process.send_signal(signal.SIGCONT)
            stop(member.process)
    _assert_exactly_once(db, done, files, env)
    db.close()


def _assert_exactly_once(
    db: Db, done: list[dict[str, Any]], files: list[Path], env: dict[str, str]
) -> None:
    assert sorted(upload["reference"] for upload in done) == ["r0", "r1", "r2", "r3"]
    for upload in done:
        assert upload["status"] == "Done", upload
        assert upload["accepted"] + upload["duplicates"] == upload["records"] == ROWS
    counted_twice = db.execute(
        "SELECT event_id FROM seen_events GROUP BY event_id HAVING count(*) > 1 LIMIT 5"
    ).fetchall()
    assert counted_twice == []
    expected = expected_totals(*files)
    seen = _one(db, "SELECT count(*) FROM seen_events")
    assert seen == sum(upload["accepted"] for upload in done) == sum(r["events"] for r in expected)
    assert as_comparable(totals(env)) == expected
