"""Scale-out faults on PostgreSQL: consumers in one group over 6 partitions, a load flowing.

One run goes through every fault a deployment sees, each where it bites: a consumer
SIGKILLed inside its batch transaction, a consumer added mid-run, one SIGSTOPped inside its
batch transaction past the session timeout (PostgreSQL ends its session, the others take
its partitions, and it must be fenced when it resumes), the producer SIGKILLed mid-file and
the upload published again, and every consumer's PostgreSQL connection terminated. At the
end the totals must equal the ground truth, every upload be Done, and no eventId be counted
twice.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import psycopg
import pytest

from meterpipe.sample_data import SampleSpec, write_sample_file
from tests.postgres import Db, Member, assert_exactly_once, one
from tests.processes import SLOW_PRODUCER, all_final, poll, run_cli, start_cli, stop, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.both_brokers]

PARTITIONS = set(range(6))
ROWS = 30_000


def _marks(members: list[Member]) -> list[int]:
    """Where each member's log stands now: what `_rebalanced_onto` reads from."""
    return [len(member.lines()) for member in members]


def _rebalanced_onto(
    members: list[Member], timeout: float, what: str, marks: list[int] | None = None
) -> None:
    """Wait until these members alone have been given every partition since `marks` (their
    logs' lengths; by default, from now on)."""
    marks = _marks(members) if marks is None else marks

    def covered() -> bool:
        given = (p for m, n in zip(members, marks, strict=True) for _, p in m.assignments(n))
        return set(given) == PARTITIONS

    wait_for(covered, timeout, what)


def _offsets(db: Db) -> dict[int, int]:
    return dict(db.execute("SELECT partition, next_offset FROM offsets").fetchall())


def _freeze_inside_batch(member: Member, db: Db, others: list[Member]) -> list[int]:
    """SIGSTOP `member` between two statements of its batch transaction, batch in hand;
    return the `others`' log marks taken just before the stop that held.

    Frozen anywhere else (waiting for messages, say), what it had fetched may be dropped
    with its partitions before it handles any, and there would be nothing to fence. Seeing
    the transaction settle can take longer than the session timeout on a loaded machine:
    the others may take the partitions over before this returns, so they are watched from
    just before the stop.
    """
    inside = ("active", "idle in transaction")
    for _ in range(20):
        wait_for(lambda: member.backend_state(db) in inside, 60, f"{member.name} inside a batch")
        marks = _marks(others)
        member.process.send_signal(signal.SIGSTOP)
        # A statement under way finishes; a COMMIT would leave the session plain idle. One
        # still sending its result stays active, blocked on the stopped client: resume it.
        if poll(lambda: _settled_state(member, db), 15) == "idle in transaction":
            return marks
        member.process.send_signal(signal.SIGCONT)
    raise AssertionError(f"{member.name} never stopped inside a batch transaction")


def _settled_state(member: Member, db: Db) -> str | None:
    state = member.backend_state(db)
    return None if state == "active" else (state or "gone")


def _publish(env: dict[str, str], directory: Path, path: Path, ref: str) -> subprocess.Popen[bytes]:
    return start_cli(
        env, directory / f"publish-{ref}.log", "publish", str(path), "--reference", ref,
        "--store-url", env["METERPIPE_STORE_URL"],
    )  # fmt: skip


def test_consumer_and_producer_faults_on_postgres_leave_exact_totals(
    pg_pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    # Small batches: many commit points, and a load that outlasts the faults. A member
    # frozen inside its transaction holds its offset rows until PostgreSQL ends its session.
    env = {
        **pg_pipeline_env,
        "METERPIPE_BATCH_MAX_EVENTS": "500",
        "METERPIPE_IDLE_IN_TRANSACTION_TIMEOUT_S": "5",
    }
    files = [tmp_path / f"usage-{seed}.csv" for seed in range(5)]
    for seed, path in enumerate(files):
        write_sample_file(path, SampleSpec(rows=ROWS, seed=100 + seed, accounts=300))
    members = [Member(env, tmp_path, f"c{i}") for i in range(3)]
    with psycopg.connect(env["METERPIPE_STORE_URL"], autocommit=True) as db:
        publishers: list[subprocess.Popen[bytes]] = []
        try:
            wait_for(lambda: all(m.logged("assigned partition") for m in members), 90, "3 members")
            publishers = [_publish(env, tmp_path, files[i], f"r{i}") for i in (0, 1)]
            slow = {**env, "METERPIPE_CLIENT_OVERRIDES": SLOW_PRODUCER}
            producer = _publish(slow, tmp_path, files[2], "r2")

            # (d) The producer dies mid-file: some of its events already counted, the upload
            # not marked published.
            counted = "SELECT count(*) FROM seen_events WHERE upload_ref = %s"
            wait_for(lambda: one(db, counted, "r2") > 0, 120, "first events of r2 counted")
            producer.send_signal(signal.SIGKILL)
            producer.wait()
            assert one(db, "SELECT expected FROM uploads WHERE reference = 'r2'") is None

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

            # (c) A member is frozen inside its batch transaction, with r3 still arriving, past
            # the session timeout; PostgreSQL ends its session, the others take its partitions
            # and commit past it what is published after they took over (a backlog from before
            # can be gone by then). Resumed, it finds its connection gone, reconnects, and its
            # batch fails the offsets' compare-and-set.
            publishers.append(_publish(env, tmp_path, files[3], "r3"))
            wait_for(lambda: one(db, counted, "r3") > 0, 120, "first events of r3 counted")
            zombie, others = members[1], members[2:]
            marks = _freeze_inside_batch(zombie, db, others)
            frozen_at, held = _offsets(db), zombie.partitions()
            _rebalanced_onto(others, 90, "c1's partitions taken over", marks)
            assert run_cli(env, "publish", str(files[4]), "--reference", "r4").returncode == 0
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
            terminated = one(
                db, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = ANY(%s)", [m.name for m in live],
            )  # fmt: skip
            assert terminated == len(live)
            done = wait_for(lambda: all_final(env, 5), 240, "every upload final")
            assert [p.wait(timeout=120) for p in publishers] == [0, 0, 0, 0]
            assert all(m.process.poll() is None for m in live), "a consumer died"
            assert any(m.logged("store unavailable, retrying") for m in live)
        finally:
            for process in publishers:
                stop(process)
            for member in members:
                member.process.send_signal(signal.SIGCONT)
                stop(member.process)
        assert sorted(upload["reference"] for upload in done) == ["r0", "r1", "r2", "r3", "r4"]
        assert_exactly_once(db, done, files, env, ROWS)
