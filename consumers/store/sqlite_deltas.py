"""A SQLite store's totals in two places: each batch's deltas pending as one blob in
`total_deltas`, and the running `totals` they are folded into.

A batch appends its totals as one row (`append_deltas`): an upsert per total key would cost
it more than everything else. Folding runs in steps so that batches commit in between:
`combine_pending` sums every pending batch's deltas into key-ordered parts (one
transaction), then `fold_oldest_part` adds one part to `totals` per transaction. Every delta
is in exactly one place at each commit, and readers add the pending ones in the same read
transaction, so a fold changes no answer.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import polars as pl

from consumers.aggregate import aggregate, combine
from consumers.decimals import HALF
from consumers.store.blobs import frame_from_blob, frame_to_blob

__all__ = [
    "FOLD_PART_ROWS",
    "append_deltas",
    "combine_pending",
    "fold_oldest_part",
    "pending_periods",
    "pending_total_rows",
]

# Totals rows per fold transaction: a fraction of a second of upserts, so a fold of many
# keys never stalls the batches behind it for long.
FOLD_PART_ROWS = 50_000
# What `aggregate` reads: an empty frame of it gives the (empty) pending-deltas frame.
DELTA_SOURCE_SCHEMA = {
    "accountId": pl.String, "pricingUnit": pl.String, "customUnit": pl.String,
    "day": pl.Date, "quantity": pl.String, "billable": pl.Boolean,
}  # fmt: skip


def append_deltas(db: sqlite3.Connection, deltas: pl.DataFrame) -> None:
    """Keep a batch's totals (`aggregate`'s frame) as one pending blob: a fold adds them later."""
    if deltas.height:
        db.execute("INSERT INTO total_deltas (deltas) VALUES (?)", (frame_to_blob(deltas),))


def _pending_deltas(db: sqlite3.Connection, where: str = "") -> tuple[int | None, pl.DataFrame]:
    """The last pending row (None if none) of all, or those `where` selects, and their
    deltas summed by key."""
    rows = db.execute(f"SELECT batch, deltas FROM total_deltas{where} ORDER BY batch").fetchall()
    if not rows:
        return None, aggregate(pl.DataFrame(schema=DELTA_SOURCE_SCHEMA))
    return rows[-1][0], combine(pl.concat(frame_from_blob(blob) for _, blob in rows))


def combine_pending(db: sqlite3.Connection, part_rows: int = FOLD_PART_ROWS) -> int:
    """Replace the batches' pending deltas by their sums, in key-ordered parts of
    `part_rows`; return the rows. Run inside a write transaction."""
    last, deltas = _pending_deltas(db, " WHERE fold_part = 0")
    if last is None:
        return 0
    db.executemany(
        "INSERT INTO total_deltas (deltas, fold_part) VALUES (?, 1)",
        ((frame_to_blob(part),) for part in deltas.iter_slices(part_rows)),
    )
    db.execute("DELETE FROM total_deltas WHERE fold_part = 0 AND batch <= ?", (last,))
    return deltas.height


def fold_oldest_part(db: sqlite3.Connection) -> int:
    """Add the oldest combined part to `totals`; return its rows (0: no part waits). Run
    inside a write transaction."""
    part = db.execute(
        "SELECT batch, deltas FROM total_deltas WHERE fold_part = 1 ORDER BY batch LIMIT 1"
    ).fetchone()
    if part is None:
        return 0
    deltas = frame_from_blob(part[1])
    _add_totals(db, deltas)
    db.execute("DELETE FROM total_deltas WHERE batch = ?", (part[0],))
    return deltas.height


def _add_totals(db: sqlite3.Connection, deltas: pl.DataFrame) -> None:
    """Add each delta to its running total: exact integer halves, carrying lo into hi."""
    db.executemany(
        "INSERT INTO totals VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (account_id, pricing_unit, custom_unit, day) DO UPDATE SET"
        " events = events + excluded.events,"
        f" quantity_hi = quantity_hi + excluded.quantity_hi"
        f"   + (quantity_lo + excluded.quantity_lo) / {HALF},"
        f" quantity_lo = (quantity_lo + excluded.quantity_lo) % {HALF},"
        f" billable_hi = billable_hi + excluded.billable_hi"
        f"   + (billable_lo + excluded.billable_lo) / {HALF},"
        f" billable_lo = (billable_lo + excluded.billable_lo) % {HALF}",
        # Column lists zipped into rows: faster than iter_rows() for many totals.
        zip(*(deltas[column].to_list() for column in deltas.columns), strict=True),
    )


def pending_total_rows(
    db: sqlite3.Connection, account: str | None, unit: str | None, period: str | None
) -> list[tuple[Any, ...]]:
    """The pending deltas matching the filters, as rows of `SqliteLedger.total_rows`."""
    _, pending = _pending_deltas(db)
    return pending.filter(_pending_filter(account, unit, period)).drop("day").rows()


def pending_periods(db: sqlite3.Connection) -> set[str]:
    """The `YYYY-MM` periods of the pending deltas."""
    _, pending = _pending_deltas(db)
    return set(pending["day"].str.slice(0, 7).unique())


def _pending_filter(account: str | None, unit: str | None, period: str | None) -> pl.Expr:
    """`totals_filter` for a frame of deltas (columns named as `consumers.aggregate` does)."""
    selected = pl.lit(True)
    if account:
        selected &= pl.col("accountId").is_in([account, account.lower()])
    if unit:
        selected &= (pl.col("pricingUnit") == unit) | (pl.col("customUnit") == unit)
    if period:
        selected &= pl.col("day").str.slice(0, 7) == period
    return selected
