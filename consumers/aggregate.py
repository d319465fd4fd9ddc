"""Per-batch usage totals, summed exactly with polars, in integer units.

Totals are kept per (account, pricingUnit, customUnit, UTC day) so that any calendar
month can be answered later. A missing unit is the empty string in the key, because
SQL primary keys treat NULLs as all different.

Quantities are summed as integers of 10^-12 units (the validation rule allows at most
12 decimals), so no sum ever rounds. A store adds such a sum to its running total in
two 64-bit halves, `hi * 10^18 + lo`, which plain SQL integer arithmetic does exactly
without a decimal type or a callback into Python.
"""

from __future__ import annotations

import polars as pl

from consumers.decimals import DECIMAL_SCALE, HALF

__all__ = ["TOTAL_KEYS", "aggregate", "combine"]

COMBINE_SLICE_ROWS = 1_000_000  # deltas summed at once in a fold (see combine)
TOTAL_KEYS = ["accountId", "pricingUnit", "customUnit", "day"]


def _units(column: str) -> pl.Expr:
    """A validated decimal string as an exact Int128 count of 10^-12 units."""
    return pl.col(column).str.to_decimal(scale=DECIMAL_SCALE).to_physical()


def _halves(total: pl.Expr, name: str) -> list[pl.Expr]:
    return [
        (total // HALF).cast(pl.Int64).alias(f"{name}Hi"),
        (total % HALF).cast(pl.Int64).alias(f"{name}Lo"),
    ]


def _exact(name: str) -> pl.Expr:
    """A stored (hi, lo) pair back as one exact Int128 count of 10^-12 units."""
    return pl.col(f"{name}Hi").cast(pl.Int128) * HALF + pl.col(f"{name}Lo").cast(pl.Int128)


def _as_stored(sums: pl.DataFrame) -> pl.DataFrame:
    """Summed rows (keys, `events`, `q`, `b`) as a store keeps them: day as text, halves."""
    return sums.select(
        *TOTAL_KEYS[:3],
        pl.col("day").cast(pl.String),
        pl.col("events").cast(pl.UInt32),  # a batch's count; a combined one never nears 2^32
        *_halves(pl.col("q"), "quantity"),
        *_halves(pl.col("b"), "billableQuantity"),
    )


def _sum_runs(ranked: pl.DataFrame) -> pl.DataFrame:
    """Sum deltas (keys as ranks) by key, in key order: running sums at each run's end."""
    sums = ["events", "q", "b"]
    ordered = ranked.select(
        *TOTAL_KEYS,
        pl.col("events").cast(pl.Int64),
        _exact("quantity").alias("q"),
        _exact("billableQuantity").alias("b"),
    ).sort(TOTAL_KEYS)
    run_ends = pl.any_horizontal(
        pl.col(key).ne_missing(pl.col(key).shift(-1)) for key in TOTAL_KEYS
    )
    running = ordered.select(*TOTAL_KEYS, pl.col(sums).cum_sum(), run_ends.alias("_end"))
    return running.filter("_end").with_columns(
        pl.col(total) - pl.col(total).shift(1, fill_value=0) for total in sums
    )


def aggregate(accepted: pl.DataFrame) -> pl.DataFrame:
    """One row per total key, in no particular order: events, and quantity and billable
    quantity as (hi, lo).

    A batch's keys are nearly all distinct (an account's unit on one day): hashing them
    costs a third of sorting them, and whatever needs an order sorts (a fold, PostgreSQL).
    """
    units = _units("quantity")
    billable = pl.when(pl.col("billable")).then(units).otherwise(pl.lit(0, pl.Int128))
    keyed = accepted.with_columns(pl.col("pricingUnit", "customUnit").fill_null(""))
    sums = keyed.group_by(TOTAL_KEYS).agg(
        pl.len().alias("events"), units.sum().alias("q"), billable.sum().alias("b")
    )
    return _as_stored(_with_day_text(sums))


def _with_day_text(sums: pl.DataFrame) -> pl.DataFrame:
    """`sums` with each day as its ISO text, each distinct day formatted once.

    A batch's ~100k totals fall on a few dozen days: formatting every row's date took
    9 ms per batch, about 2 through its distinct days.
    """
    days = sums["day"].unique()
    as_text = days.cast(pl.String)
    return sums.with_columns(pl.col("day").replace_strict(days, as_text, return_dtype=pl.String))


def combine(deltas: pl.DataFrame) -> pl.DataFrame:
    """Sum frames of `aggregate` (from several batches) into one row per key, exactly, in
    key order (a fold upserts its parts in that order).

    Sorted, a key's rows are one run: its sums are running sums at the run's last row,
    less those at the run before. The keys travel as their ranks among the distinct values
    (integers sort in the text's order), never as text, and may come as pl.Categorical (as
    stored). Accounts are summed `COMBINE_SLICE_ROWS` deltas at a time, by rank: each
    slice's keys all sort before the next slice's. Measured on a 5M-event stream's deltas:
    2.2M combined in 0.60-0.67 s, against 1.42-1.58 s sorting the text and grouping the
    runs; 3.83M at +240 MB of peak memory in slices, against +580 MB all at once.
    """
    distinct = {key: deltas[key].unique().drop_nulls().cast(pl.String).sort() for key in TOTAL_KEYS}
    ranks = [pl.col(key).cast(pl.Enum(distinct[key].to_list())).to_physical() for key in TOTAL_KEYS]
    ranked = deltas.with_columns(ranks)
    slices = max(-(-deltas.height // COMBINE_SLICE_ROWS), 1)
    edges = [distinct["accountId"].len() * index // slices for index in range(slices + 1)]
    account = pl.col("accountId")

    def accounts_of(index: int) -> pl.Expr:
        inside = (account >= edges[index]) & (account < edges[index + 1])
        return inside | account.is_null() if index == 0 else inside  # a null sorts first

    summed = pl.concat(_sum_runs(ranked.filter(accounts_of(index))) for index in range(slices))
    return _as_stored(summed.with_columns(distinct[key].gather(summed[key]) for key in TOTAL_KEYS))
