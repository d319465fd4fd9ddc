"""What only the PostgreSQL store has to prove: concurrent starters, fencing, reconnects."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import polars as pl
import psycopg
import pytest

from consumers.store import BatchOutcome, StoredOffset, UploadRecord
from consumers.store.migrations import POSTGRES_MIGRATIONS, apply_migrations
from consumers.store.postgres import PostgresStore
from consumers.store.reports import summarize_totals
from meterpipe.errors import StaleBatchError, StoreError
from tests.consumers.test_store import TOPIC, _batch, _events


def _together(count: int, work: Callable[[int], str]) -> list[str]:
    """Run `work(i)` on `count` threads released at once; their results, sorted."""
    barrier = threading.Barrier(count)
    results: list[str] = []

    def run(index: int) -> None:
        barrier.wait()
        results.append(work(index))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return sorted(results)


def test_starters_migrating_one_schema_at_once_all_succeed(postgres_url: str) -> None:
    def open_and_close(_: int) -> str:
        PostgresStore.open(postgres_url).close()
        return "ok"

    assert _together(8, open_and_close) == ["ok"] * 8


def _race(stores: list[PostgresStore], start: StoredOffset | None, end: int, tag: str) -> list[str]:
    """Each store applies its own batch from `start` at the same moment."""

    def apply(index: int) -> str:
        events = _events((f"{tag}-{index}", 10 * end + index, str(index + 1), True))
        try:
            stores[index].apply_batch(_batch(events, start, end + index))
        except StaleBatchError:
            return "stale"
        return "ok"

    return _together(len(stores), apply)


@pytest.mark.parametrize("round_", range(5))
def test_two_consumers_from_the_same_offsets_one_commits(postgres_url: str, round_: int) -> None:
    """Fencing holds for a partition new to the store and for one it already has."""
    stores = [PostgresStore.open(postgres_url) for _ in range(2)]
    stores[0].create_upload(UploadRecord(reference="u1", name="f.csv", upload_key="k"))
    try:
        assert _race(stores, None, 2, f"new-{round_}") == ["ok", "stale"]
        (start,) = stores[0].load_offsets(TOPIC).values()
        assert start.next_offset in (2, 3)
        assert _race(stores, start, 4, f"held-{round_}") == ["ok", "stale"]
        (end,) = stores[1].load_offsets(TOPIC).values()
        assert end.next_offset in (4, 5)
        (total,) = summarize_totals(stores[1].total_rows(None, None, None))
        assert total.events == 2
        upload = stores[1].find_upload("u1")
        assert upload is not None
        assert upload.accepted == 2
    finally:
        for store in stores:
            store.close()


def test_a_lost_connection_is_a_store_error_and_then_heals(postgres_url: str) -> None:
    store = PostgresStore.open(postgres_url)
    try:
        pid = store._db.connect().info.backend_pid
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(StoreError):
            store.apply_batch(_batch(_events(("a", 2, "1", True)), None, 1))
        stats = store.apply_batch(_batch(_events(("a", 2, "1", True)), None, 1))
        assert stats.accepted == 1
    finally:
        store.close()


def test_an_unreachable_server_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot open PostgreSQL store"):
        PostgresStore.open("postgresql://postgres@127.0.0.1:1/test?connect_timeout=2")


def test_a_session_frozen_in_its_transaction_is_ended_and_frees_its_offset_rows(
    postgres_url: str,
) -> None:
    """A consumer frozen mid-batch holds its offset rows only for the configured timeout."""
    frozen = PostgresStore.open(postgres_url, idle_in_transaction_timeout_s=1.0)
    new_owner = PostgresStore.open(postgres_url)
    try:
        frozen.create_upload(UploadRecord(reference="u1", name="f.csv", upload_key="k"))
        frozen.apply_batch(_batch(_events(("a", 0, "1", True)), None, 1))
        (start,) = frozen.load_offsets(TOPIC).values()
        session = frozen._db.connect()
        assert session.execute("SHOW idle_in_transaction_session_timeout").fetchone() == ("1s",)
        # Frozen between statements of its batch transaction, the offset row locked.
        session.execute("BEGIN")
        session.execute("SELECT * FROM offsets FOR UPDATE")
        # Without the timeout the new owner would wait for the lock until this one fails.
        new_owner._db.execute("SET lock_timeout = '20s'")
        started = time.monotonic()
        stats = new_owner.apply_batch(_batch(_events(("b", 1, "2", True)), start, 2))
        assert stats.accepted == 1
        assert 0.9 < time.monotonic() - started < 15
        with pytest.raises(StoreError, match="idle-in-transaction"):
            frozen._db.execute("SELECT 1")
        with pytest.raises(StaleBatchError):
            frozen.apply_batch(_batch(_events(("c", 1, "3", True)), start, 2))
    finally:
        frozen.close()
        new_owner.close()


@pytest.mark.parametrize("round_", range(5))
def test_one_event_id_committed_on_two_partitions_at_once_is_accepted_once(
    postgres_url: str, round_: int
) -> None:
    """Each store holds its own partition: only the store can tell that both carry `e-*`."""
    stores = [PostgresStore.open(postgres_url) for _ in range(2)]
    ids = [f"e-{round_}-{n}" for n in range(200)]

    def apply(partition: int) -> str:
        # Same eventIds, other rows: copies produced twice, not a redelivery.
        events = _events(
            *((event_id, 1000 * partition + n, "1", True) for n, event_id in enumerate(ids))
        )
        outcome = BatchOutcome(TOPIC, "log-1", events, _no_letters(), {partition: (None, 200)})
        stats = stores[partition].apply_batch(outcome)
        return f"{stats.accepted}+{stats.duplicates}"

    try:
        results = _together(2, apply)
        accepted = sum(int(result.split("+")[0]) for result in results)
        duplicates = sum(int(result.split("+")[1]) for result in results)
        assert (accepted, duplicates) == (200, 200), results
        with psycopg.connect(postgres_url) as db:
            row = db.execute(
                "SELECT count(*), count(DISTINCT event_id) FROM seen_events"
            ).fetchone()
        assert row == (200, 200)
    finally:
        for store in stores:
            store.close()


def _no_letters() -> pl.DataFrame:
    return pl.DataFrame(schema={"uploadRef": pl.String, "rowNumber": pl.Int64})


def test_migrating_a_store_holding_an_event_id_twice_keeps_the_first(postgres_url: str) -> None:
    """A store written before eventIds were a unique key may hold copies: the earliest stays."""
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        apply_migrations(db.cursor(), POSTGRES_MIGRATIONS[:1], "%s")
        db.execute(
            "INSERT INTO seen_events VALUES (1, 'e', 'u1', 2, 100), (1, 'e', 'u2', 7, 200),"
            " (2, 'f', 'u1', 3, 100)"
        )
    PostgresStore.open(postgres_url).close()
    with psycopg.connect(postgres_url) as db:
        rows = db.execute(
            "SELECT event_id, upload_ref, row_number FROM seen_events ORDER BY event_id"
        ).fetchall()
        with pytest.raises(psycopg.errors.UniqueViolation):
            db.execute("INSERT INTO seen_events VALUES (1, 'e', 'u3', 9, 300)")
    assert rows == [("e", "u1", 2), ("f", "u1", 3)]
