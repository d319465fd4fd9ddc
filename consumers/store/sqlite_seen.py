"""A SQLite store's dedupe state: the eventIds it has counted and the rows it has settled.

A batch's accepted eventIds are one `seen_blocks` row (their hashes, and the eventIds with
their provenance: `consumers.store.seen_rows`). Which rows may hold a batch's ids is answered
by an in-memory `SeenIndex`, caught up from the blocks inside each write transaction (so
several processes sharing the file stay exact), and confirmed against the full eventId read
back from the blocks. Duplicates, dead letters and siblings are `settled_rows`, one per row.
"""

from __future__ import annotations

import json
import sqlite3
import time

import numpy as np
import numpy.typing as npt
import polars as pl

from consumers.dedupe import Classified
from consumers.event_hash import ID_HASH
from consumers.seen_index import SeenIndex
from consumers.store.frames import (
    SETTLED_SCHEMA,
    provenance_of,
    settled_outcomes,
    settled_with_first_arrival,
)
from consumers.store.seen_rows import SEEN_SCHEMA, pack_seen_rows, read_seen_rows

__all__ = ["SeenBlocks", "row_runs"]

BLOCK_END = "(first_row + length(hashes) / 8)"  # one past a block's last row
NO_ROW = 2**63 - 1  # above every row id
RUN_GAP_ROWS = 1_000  # see row_runs
MAX_RUNS = 256
ROW_SPAN = 2**40  # row numbers are far below it (a larger one only costs more ranges)


def row_runs(provenance: pl.DataFrame) -> pl.DataFrame:
    """Row ranges (uploadRef, first, last) covering every (uploadRef, rowNumber) given.

    A batch holds an upload's rows in a few runs, one per partition it read (each partition
    a stretch of the file), and partitions are read unevenly: from the first row to the last
    can span most of the upload, whose settled rows one scan would then read in every batch.
    Rows more than `RUN_GAP_ROWS` apart start a new range; when that makes more than
    `MAX_RUNS` (rows scattered), one range per upload is cheaper. Every row is inside its
    range whatever the order: sorting only keeps the ranges few. In numpy: polars
    expressions (a sort by a computed key, then a group-by in order) take about twice as long.
    """
    if provenance.is_empty():
        return pl.DataFrame(schema={"uploadRef": pl.String, "first": pl.Int64, "last": pl.Int64})
    uploads = provenance["uploadRef"]
    # One integer sort key, an upload's code above its row number: sorting by a text
    # column and a number costs several times more.
    codes = uploads.cast(pl.Categorical).to_physical().cast(pl.Int64).to_numpy()
    rows = provenance["rowNumber"].to_numpy()
    # Stable: its sort finds the runs already in order (each partition's rows come in file
    # order), a few times faster than numpy's default sort here.
    order = np.argsort(codes * ROW_SPAN + rows, kind="stable")
    codes, rows = codes[order], rows[order]
    new_run = np.ones(len(rows), dtype=bool)
    new_run[1:] = (codes[1:] != codes[:-1]) | (rows[1:] - rows[:-1] > RUN_GAP_ROWS)
    starts = np.flatnonzero(new_run)
    if len(starts) > MAX_RUNS:
        bounds = [pl.col("rowNumber").min().alias("first"), pl.col("rowNumber").max().alias("last")]
        return provenance.group_by("uploadRef").agg(bounds)
    return pl.DataFrame({
        "uploadRef": uploads.gather(order[starts]),
        "first": np.minimum.reduceat(rows, starts),
        "last": np.maximum.reduceat(rows, starts),
    })  # fmt: skip


class SeenBlocks:
    """The counted eventIds and settled rows of one store file, with the index over them.

    Every method but `added` and `forget_rows_below` runs inside the caller's write
    transaction; those two tell the index what a committed transaction changed (a rolled-back
    one changed nothing).
    """

    def __init__(self) -> None:
        self._index: SeenIndex | None = None  # built at the first batch: readers never need it

    def catch_up(self, db: sqlite3.Connection) -> SeenIndex:
        """The index including every batch committed so far, by any process.

        Called with the write lock held, so no other batch can commit meanwhile.
        """
        if self._index is None:
            self._index = SeenIndex()
            # Rows written before seen_blocks existed have no blob: read their hashes.
            first_block = db.execute("SELECT min(first_row) FROM seen_blocks").fetchone()[0]
            legacy = db.execute(
                "SELECT rowid, id_hash FROM seen_events WHERE rowid < ?",
                (first_block if first_block is not None else NO_ROW,),
            ).fetchall()
            if legacy:
                rows, hashes = np.array(legacy, dtype=np.int64).T
                self._index.add(hashes, rows)
        blocks = db.execute(
            "SELECT first_row, hashes FROM seen_blocks WHERE first_row > ? ORDER BY first_row",
            (self._index.last_row,),
        )
        for first_row, blob in blocks:
            hashes = np.frombuffer(blob, dtype=np.int64)
            self._index.add(hashes, np.arange(first_row, first_row + len(hashes)))
        return self._index

    def added(self, hashes: npt.NDArray[np.int64], rows: npt.NDArray[np.int64]) -> None:
        """Index what a committed transaction appended (`append`'s result)."""
        if self._index is not None:
            self._index.add(hashes, rows)

    def lookup(
        self, db: sqlite3.Connection, events: pl.DataFrame, dead_lettered: pl.DataFrame
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Which of the batch's eventIds (hashed: `ID_HASH`) and provenances the store knows."""
        index = self.catch_up(db)
        # The index only narrows the search to candidate rows; classify() matches the
        # full eventId, so a hash collision or a pruned row never hides a new event.
        known = _seen_at_rows(db, index.candidate_rows(events[ID_HASH].to_numpy()))
        provenance = pl.concat([provenance_of(events), provenance_of(dead_lettered)])
        # One range scan per run of nearby rows finds their settled rows (a superset of
        # the batch's; classify() joins exactly).
        settled = [
            row
            for upload_ref, first, last in row_runs(provenance).iter_rows()
            for row in db.execute(
                "SELECT upload_ref, row_number, outcome FROM settled_rows"
                " WHERE upload_ref = ? AND row_number BETWEEN ? AND ?",
                (upload_ref, first, last),
            )
        ]
        return known, pl.DataFrame(settled, schema=SETTLED_SCHEMA, orient="row")

    def append(
        self, db: sqlite3.Connection, classified: Classified
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Append accepted ids (and their hash blob), settle the rest; return (hashes, rows).

        After `catch_up` (or `lookup`) in the same transaction: the index then holds every
        row below the new ones.
        """
        claimed = classified.claimed
        accepted = claimed.select(name for name in SEEN_SCHEMA if name in claimed.columns)
        hashes = claimed[ID_HASH].to_numpy()
        last = _last_row(db)
        rows = np.arange(last + 1, last + 1 + len(hashes), dtype=np.int64)
        if len(hashes):
            block = (last + 1, int(time.time()), hashes.tobytes(), pack_seen_rows(accepted))
            db.execute("INSERT INTO seen_blocks VALUES (?, ?, ?, ?)", block)
        db.executemany(
            "DELETE FROM settled_rows WHERE upload_ref = ? AND row_number = ?",
            classified.revived.iter_rows(),
        )
        for frame, outcome in settled_outcomes(classified):
            db.executemany(
                "INSERT INTO settled_rows (upload_ref, row_number, digest, kafka_position,"
                " outcome) VALUES (?, ?, ?, ?, ?)",
                ((*row, outcome) for row in settled_with_first_arrival(frame).iter_rows()),
            )
        return hashes, rows

    def prune(self, db: sqlite3.Connection, cutoff_s: int) -> tuple[int, int | None]:
        """Delete eventIds first seen before `cutoff_s` (epoch seconds); return how many, and
        the first row still kept (None: none), for `forget_rows_below` once committed."""
        # The newest block always stays: it is what keeps row ids growing (see _last_row).
        old_blocks = (
            "FROM seen_blocks WHERE events IS NOT NULL AND seen_at < ?"
            " AND first_row < (SELECT max(first_row) FROM seen_blocks)"
        )
        pruned = db.execute("DELETE FROM seen_events WHERE seen_at < ?", (cutoff_s,)).rowcount
        in_blocks = db.execute(f"SELECT total(length(hashes) / 8) {old_blocks}", (cutoff_s,))
        pruned += int(in_blocks.fetchone()[0])
        db.execute(f"DELETE {old_blocks}", (cutoff_s,))
        first_row = db.execute(
            "SELECT min(first) FROM (SELECT min(rowid) AS first FROM seen_events UNION ALL"
            " SELECT min(first_row) FROM seen_blocks WHERE events IS NOT NULL)"
        ).fetchone()[0]
        # Hash-only blocks (from before blocks held events) go once their rows have.
        db.execute(
            f"DELETE FROM seen_blocks WHERE events IS NULL AND {BLOCK_END} <= ?"
            " AND first_row < (SELECT max(first_row) FROM seen_blocks)",
            (first_row if first_row is not None else NO_ROW,),
        )
        return int(pruned), first_row

    def forget_rows_below(self, first_row: int | None) -> None:
        """Drop from the index the rows a committed prune deleted (below `first_row`)."""
        if self._index is not None and first_row is not None:
            self._index.forget_rows_below(first_row)


def _last_row(db: sqlite3.Connection) -> int:
    """The highest row id ever used: new rows go above it, even after pruning."""
    in_blocks = db.execute(f"SELECT max({BLOCK_END}) - 1 FROM seen_blocks").fetchone()[0]
    in_rows = db.execute("SELECT max(rowid) FROM seen_events").fetchone()[0]
    return max(in_blocks or 0, in_rows or 0)


def _seen_at_rows(db: sqlite3.Connection, rows: npt.NDArray[np.int64]) -> pl.DataFrame:
    """The eventId and provenance stored at each row id still kept (pruned ones: none).

    Only those rows are read from each block (incremental blob I/O), not the block.
    """
    wanted = json.dumps(rows.tolist())
    legacy = db.execute(  # rows written before blocks held their events
        "SELECT event_id, upload_ref, row_number, NULL, NULL FROM seen_events"
        " WHERE rowid IN (SELECT value FROM json_each(?))",
        (wanted,),
    ).fetchall()
    found = [pl.DataFrame(legacy, schema=SEEN_SCHEMA, orient="row")]
    blocks = db.execute(
        "SELECT first_row, length(hashes) / 8 FROM seen_blocks"
        " WHERE events IS NOT NULL AND first_row IN"
        " (SELECT (SELECT max(first_row) FROM seen_blocks WHERE first_row <= value)"
        "  FROM json_each(?))",
        (wanted,),
    ).fetchall()
    for first_row, count in blocks:
        inside = rows[(rows >= first_row) & (rows < first_row + count)]
        with db.blobopen("seen_blocks", "events", first_row, readonly=True) as blob:
            found.append(read_seen_rows(blob, (inside - first_row).tolist()))
    return pl.concat(found)
