"""Per-batch usage totals, summed as exact decimals with polars.

Totals are kept per (account, pricingUnit, customUnit, UTC day) so that any calendar
month can be answered later. A missing unit is the empty string in the key, because
SQL primary keys treat NULLs as all different.
"""

from __future__ import annotations

import polars as pl

__all__ = ["DECIMAL_SCALE", "TOTAL_KEYS", "aggregate", "quantity_type"]

# Quantities have at most 12 decimals (the validation rule); 38 digits leave 26 for the
# integer part, so a batch of 20-integer-digit quantities cannot overflow.
DECIMAL_SCALE = 12
TOTAL_KEYS = ["accountId", "pricingUnit", "customUnit", "day"]


def quantity_type() -> pl.Decimal:
    """The exact decimal type totals are summed in."""
    return pl.Decimal(38, DECIMAL_SCALE)


def aggregate(accepted: pl.DataFrame) -> pl.DataFrame:
    """Sum accepted events into one row per total key, quantities as decimal strings."""
    quantity = pl.col("quantity").str.to_decimal(scale=DECIMAL_SCALE)
    zero = pl.lit(0).cast(quantity_type())
    billable = pl.when(pl.col("billable")).then(quantity).otherwise(zero)
    return (
        accepted.with_columns(
            pl.col("pricingUnit").fill_null(""),
            pl.col("customUnit").fill_null(""),
        )
        .group_by(TOTAL_KEYS)
        .agg(
            pl.len().alias("events"),
            quantity.sum().alias("quantity"),
            billable.sum().alias("billableQuantity"),
        )
        .with_columns(
            pl.col("day").cast(pl.String),
            pl.col("quantity").cast(pl.String),
            pl.col("billableQuantity").cast(pl.String),
        )
        .sort(TOTAL_KEYS)
    )
