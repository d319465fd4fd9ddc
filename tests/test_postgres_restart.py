"""PostgreSQL stopped and started again under three running consumers.

The test runs a PostgreSQL server of its own (stopping the suite's would fail other tests'
stores). An upload is published, three `meterpipe consume` processes count it in small
batches, and the server is stopped mid-way: every open session ends and connections are
refused. The consumers must stay up, say on /readyz that they wait for the store and why,
retry with a growing pause, and go on by themselves once the server is back on the same
port and data directory. At the end the upload is Done, the totals equal the ground truth
and no eventId is counted twice.
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from meterpipe.sample_data import SampleSpec, write_sample_file
from tests.pgserver import PostgresServer
from tests.postgres import Member, assert_exactly_once, one, schema_url
from tests.processes import all_final, http_get, metrics_port, run_cli, stop, wait_for

pytestmark = pytest.mark.slow

ROWS = 30_000
SCHEMA = "restart"
UNAVAILABLE = "store unavailable, retrying"
STORE = "store: reachable"
LONGEST_PAUSE_S = 12  # the retry pause grows to 8 s and no further; slack for a busy machine


def _retry_times(member: Member) -> list[datetime]:
    """When the member logged each failed attempt to reach the store."""
    return [
        datetime.fromisoformat(line["time"])
        for line in member.lines()
        if line["message"].startswith(UNAVAILABLE)
    ]


def _readiness(port: int) -> tuple[int, Any]:
    """/readyz's status and its JSON body."""
    status, body = http_get(port, "/readyz")
    return status, json.loads(body)


def test_consumers_reconnect_by_themselves_after_a_postgresql_restart(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "usage.csv"
    write_sample_file(source, SampleSpec(rows=ROWS, seed=77, accounts=300))
    with PostgresServer() as server:
        with psycopg.connect(server.url, autocommit=True) as admin:
            admin.execute(f'CREATE SCHEMA "{SCHEMA}"')
        # Batches of 50 events: hundreds of commits, so the stop lands mid-way.
        env = {
            **pipeline_env,
            "METERPIPE_STORE_URL": schema_url(SCHEMA, server_url=server.url),
            "METERPIPE_PARTITIONS": "6",
            "METERPIPE_BATCH_MAX_EVENTS": "50",
        }
        run_cli(env, "publish", str(source), "--reference", "r0")
        members = [Member(env, tmp_path, f"c{i}") for i in range(3)]
        try:
            ports = [metrics_port(m.process, m.log) for m in members]
            with psycopg.connect(env["METERPIPE_STORE_URL"], autocommit=True) as db:
                counted = "SELECT count(*) FROM seen_events"
                wait_for(lambda: one(db, counted) > 0, 120, "first events counted")
            server.stop()

            # Down: each member that tries the store backs off and says why on /readyz.
            waiting = wait_for(
                lambda: [m for m in members if len(_retry_times(m)) >= 4], 120,
                "a consumer retrying the store 4 times",
            )  # fmt: skip
            for member in waiting:
                status, ready = _readiness(ports[members.index(member)])
                assert status == 503, ready
                assert STORE in ready["waitingFor"]
                assert ready["errors"][STORE]
            assert http_get(ports[0], "/metrics")[0] == 200
            assert all(m.process.poll() is None for m in members), "a consumer died"

            server.start()
            (done,) = wait_for(lambda: all_final(env, 1), 300, "the upload final after restart")
            assert all(m.process.poll() is None for m in members), "a consumer died"
            ready = (200, {"ready": True, "waitingFor": [], "errors": {}})
            wait_for(lambda: all(_readiness(p) == ready for p in ports), 60, "consumers ready")
        finally:
            for member in members:
                stop(member.process)
        for member in waiting:
            times = _retry_times(member)
            pauses = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
            assert pauses[2] > 1.5 * pauses[0], f"{member.name} did not back off: {pauses}"
            assert max(pauses) <= LONGEST_PAUSE_S, f"{member.name} waited past its bound: {pauses}"
        with psycopg.connect(env["METERPIPE_STORE_URL"], autocommit=True) as db:
            assert_exactly_once(db, [done], [source], env, ROWS)
