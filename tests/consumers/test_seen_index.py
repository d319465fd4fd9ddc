"""The in-memory dedupe index against brute force, and two processes sharing one SQLite file."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers._seen_search import rows_matching
from consumers.event_hash import event_id_hashes
from consumers.seen_index import FANOUT, SeenIndex
from consumers.store import BatchOutcome, StoredOffset, UploadRecord
from consumers.store.migrations import SQLITE_MIGRATIONS, apply_migrations
from consumers.store.sqlite import SqliteStore
from tests.consumers.earlier_blobs import arrow_file

# Few distinct hashes, so that the same hash under several rows (collisions) is common,
# and some anywhere in the 64-bit range, for the runs' directories of top bits.
hashes = st.one_of(
    st.integers(-50, 50),
    st.sampled_from([-(2**63), -(2**63) + 1, -(2**62), 2**62, 2**63 - 2, 2**63 - 1]),
    st.integers(-(2**63), 2**63 - 1),
)
batches = st.lists(
    st.tuples(
        st.lists(hashes, min_size=0, max_size=30),
        st.integers(0, 40),  # prune below this row after the batch (if above the last prune)
    ),
    min_size=1,
    max_size=3 * FANOUT,
)


@settings(max_examples=150, deadline=None)
@given(batches, st.lists(st.one_of(st.integers(-60, 60), hashes), max_size=40))
def test_candidates_are_exactly_the_live_rows_with_those_hashes(
    history: list[tuple[list[int], int]], query: list[int]
) -> None:
    index, next_row, pruned_below = SeenIndex(), 1, 0
    rows_by_hash: dict[int, set[int]] = {}
    for hashes, prune in history:
        rows = np.arange(next_row, next_row + len(hashes), dtype=np.int64)
        index.add(np.array(hashes, dtype=np.int64), rows)
        for value, row in zip(hashes, rows.tolist(), strict=True):
            rows_by_hash.setdefault(value, set()).add(row)
        next_row += len(hashes)
        pruned_below = max(pruned_below, prune)
        index.forget_rows_below(pruned_below)
    expected = sorted(
        row for value in set(query) for row in rows_by_hash.get(value, ()) if row >= pruned_below
    )
    assert index.candidate_rows(np.array(query, dtype=np.int64)).tolist() == expected


def test_large_runs_find_every_stored_hash_and_nothing_else() -> None:
    """Runs big enough for directories of many buckets, over the whole 64-bit range."""
    rng = np.random.default_rng(7)
    stored = rng.integers(-(2**63), 2**63 - 1, 200_000, dtype=np.int64, endpoint=True)
    stored[:1_000] = stored[1_000:2_000]  # the same hash under two rows
    index = SeenIndex()
    for first in range(0, len(stored), 20_000):  # batches, merged into larger runs
        index.add(stored[first : first + 20_000], np.arange(first, first + 20_000) + 1)
    absent = rng.integers(-(2**63), 2**63 - 1, 50_000, dtype=np.int64, endpoint=True)
    query = np.concatenate([stored[::7], absent, [-(2**63), 2**63 - 1]])
    rows_by_hash: dict[int, list[int]] = {}
    for row, value in enumerate(stored.tolist(), start=1):
        rows_by_hash.setdefault(value, []).append(row)
    expected = sorted({row for value in query.tolist() for row in rows_by_hash.get(value, [])})
    assert index.candidate_rows(query).tolist() == expected


def _batch(event_ids: list[str], first_row: int, start: StoredOffset | None) -> BatchOutcome:
    events = pl.DataFrame(
        {
            "eventId": event_ids,
            "uploadRef": ["u1"] * len(event_ids),
            "rowNumber": list(range(first_row, first_row + len(event_ids))),
            "accountId": ["acct"] * len(event_ids),
            "pricingUnit": ["UNIT"] * len(event_ids),
            "customUnit": [None] * len(event_ids),
            "quantity": ["1"] * len(event_ids),
            "billable": [True] * len(event_ids),
            "day": [dt.date(2026, 10, 1)] * len(event_ids),
        },
        schema_overrides={"customUnit": pl.String},
    )
    letters = pl.DataFrame(schema={"uploadRef": pl.String, "rowNumber": pl.Int64})
    end = first_row + len(event_ids)
    return BatchOutcome("usage", "log-1", events, letters, {0: (start, end)})


def test_stores_sharing_a_file_see_each_others_event_ids(tmp_path: Path) -> None:
    """Each store's index catches up on the other's batches before deciding a new one."""
    first, second = (SqliteStore.open(tmp_path / "store.sqlite3") for _ in range(2))
    try:
        first.create_upload(UploadRecord(reference="u1", name="f.csv", upload_key="k"))
        one = first.apply_batch(_batch(["a", "b"], 0, None))
        two = second.apply_batch(_batch(["b", "c"], 2, StoredOffset("log-1", 2)))
        three = first.apply_batch(_batch(["c", "d", "a"], 4, StoredOffset("log-1", 4)))
        # A store opened afterwards loads everything from the stored hash blocks.
        late = SqliteStore.open(tmp_path / "store.sqlite3")
        four = late.apply_batch(_batch(["d", "e"], 7, StoredOffset("log-1", 7)))
        late.close()
    finally:
        first.close()
        second.close()
    accepted = [stats.accepted for stats in (one, two, three, four)]
    duplicates = [stats.duplicates for stats in (one, two, three, four)]
    assert (accepted, duplicates) == ([2, 1, 1, 1], [0, 1, 2, 1])


def test_event_ids_stored_as_rows_by_an_older_schema_still_dedupe(tmp_path: Path) -> None:
    """A store written before blocks held their eventIds (schema 4) keeps deduping on upgrade."""
    path = tmp_path / "store.sqlite3"
    now = int(time.time())
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        apply_migrations(db, SQLITE_MIGRATIONS[:4], "?")
        hashes = event_id_hashes(pl.Series(["a", "b"])).to_list()
        db.executemany(
            "INSERT INTO seen_events (rowid, id_hash, event_id, upload_ref, row_number, seen_at)"
            " VALUES (?, ?, ?, 'u0', ?, ?)",
            [(1, hashes[0], "a", 1, now), (2, hashes[1], "b", 2, now)],
        )
        db.execute("INSERT INTO seen_blocks VALUES (1, ?, ?)", (now, np.array(hashes).tobytes()))
    store = SqliteStore.open(path)
    try:
        store.create_upload(UploadRecord(reference="u1", name="f.csv", upload_key="k"))
        one = store.apply_batch(_batch(["a", "c"], 0, None))
        two = store.apply_batch(_batch(["b", "c", "d"], 2, StoredOffset("log-1", 2)))
        entries = store.stats().tables["seen_events"].rows
    finally:
        store.close()
    assert (one.accepted, one.duplicates) == (1, 1)
    assert (two.accepted, two.duplicates) == (1, 2)
    assert entries == 4  # a, b as rows; c, d in blocks


def test_blocks_written_as_arrow_files_by_earlier_versions_still_dedupe(tmp_path: Path) -> None:
    """Blocks of earlier versions hold their eventIds as an Arrow file: they are read whole."""
    path = tmp_path / "store.sqlite3"
    store = SqliteStore.open(path)
    store.create_upload(UploadRecord(reference="u1", name="f.csv", upload_key="k"))
    store.apply_batch(_batch(["a", "b"], 0, None))
    store.close()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        earlier = pl.DataFrame(
            {"eventId": ["a", "b"], "uploadRef": ["u1"] * 2, "rowNumber": [0, 1]}
        )
        assert db.execute("UPDATE seen_blocks SET events = ?", (arrow_file(earlier),)).rowcount == 1
    store = SqliteStore.open(path)
    try:
        again = store.apply_batch(_batch(["a", "b"], 0, StoredOffset("log-1", 2)))  # same rows
        other = store.apply_batch(_batch(["b", "c"], 2, StoredOffset("log-1", 2)))
    finally:
        store.close()
    assert (again.accepted, again.duplicates, again.redelivered) == (0, 0, 2)
    assert (other.accepted, other.duplicates) == (1, 1)


def test_the_run_search_refuses_buffers_that_do_not_fit_together() -> None:
    hashes, rows = np.array([3, 5, 5, 9], np.int64), np.array([10, 11, 12, 13], np.int64)
    whole = np.array([0, 4], np.int64)  # a directory of one bucket (0 bits): every hash
    keys = np.array([5, 6], np.int64)
    found = rows_matching(keys, hashes, rows, whole, 0)
    assert np.frombuffer(found, np.int64).tolist() == [11, 12]
    with pytest.raises(ValueError, match="fit together"):
        rows_matching(keys, hashes, rows[:3], whole, 0)
    with pytest.raises(ValueError, match="fit together"):
        rows_matching(keys, hashes, rows, np.array([0, 2, 4], np.int64), 0)
    with pytest.raises(ValueError, match="outside the run"):  # bucket 1 from 7 to 4
        rows_matching(keys, hashes, rows, np.array([0, 7, 4], np.int64), 1)
