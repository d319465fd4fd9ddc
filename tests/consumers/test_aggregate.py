"""Batch totals and their combination: exact sums, one row per key, in the keys' text order."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Context, Decimal, localcontext
from unittest import mock

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

import consumers.aggregate
from consumers.aggregate import TOTAL_KEYS, aggregate, combine
from consumers.decimals import from_halves

EVENTS = st.tuples(
    st.sampled_from(["acct-b", "acct-a", "Acct-ü", "ácct", "a"]),
    st.sampled_from(["HOUR", "GB", "", "ünit"]),
    st.one_of(st.none(), st.sampled_from(["seat", "Seat"])),
    st.dates(dt.date(2026, 1, 1), dt.date(2026, 3, 31)),
    st.decimals(min_value=0, max_value=10**20, places=12, allow_nan=False),
    st.booleans(),
)
SCHEMA = {
    "accountId": pl.String, "pricingUnit": pl.String, "customUnit": pl.String,
    "day": pl.Date, "quantity": pl.String, "billable": pl.Boolean,
}  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(batches=st.lists(st.lists(EVENTS, max_size=40), min_size=1, max_size=4))
def test_combined_batches_sum_exactly_once_per_key_in_key_order(
    batches: list[list[tuple[str, str, str | None, dt.date, Decimal, bool]]],
) -> None:
    frames = [
        pl.DataFrame(
            [(*event[:4], str(event[4]), event[5]) for event in batch], schema=SCHEMA, orient="row"
        )
        for batch in batches
    ]
    deltas = pl.concat([aggregate(frame) for frame in frames])
    combined = combine(deltas)
    # As a fold reads them back: text as categories. Same sums, same order, text out.
    assert combine(deltas.with_columns(pl.col(pl.String).cast(pl.Categorical))).equals(combined)
    with mock.patch.object(consumers.aggregate, "COMBINE_SLICE_ROWS", 3):  # many slices
        assert combine(deltas).equals(combined)
    expected: dict[tuple[str, str, str, str], list[Decimal]] = defaultdict(
        lambda: [Decimal(0), Decimal(0), Decimal(0)]
    )
    with localcontext(Context(prec=100)):  # the default 28 digits would round the sums
        for account, unit, custom, day, quantity, billable in (e for b in batches for e in b):
            sums = expected[(account, unit, custom or "", day.isoformat())]
            sums[0] += 1
            sums[1] += quantity
            sums[2] += quantity if billable else 0
    keys = [tuple(row) for row in combined.select(TOTAL_KEYS).iter_rows()]
    assert keys == sorted(expected, key=lambda key: [part.encode() for part in key])
    for row in combined.iter_rows(named=True):
        key = (row["accountId"], row["pricingUnit"], row["customUnit"], row["day"])
        assert [
            row["events"],
            from_halves(row["quantityHi"], row["quantityLo"]),
            from_halves(row["billableQuantityHi"], row["billableQuantityLo"]),
        ] == expected[key]
