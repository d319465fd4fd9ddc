"""The benchmark's ground truth: totals computed straight from the CSV with polars.

Independent of the pipeline's own code paths (no chunking, no validation, no store), so
a fast but wrong pipeline cannot pass the benchmark's check.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

__all__ = ["comparable", "csv_totals"]


def csv_totals(path: Path) -> list[dict[str, Any]]:
    """Per (account, pricingUnit, customUnit): events, quantity and billable quantity."""
    frame = pl.read_csv(path, infer_schema=False).with_row_index("row")
    first = frame.filter(
        pl.col("eventId").is_null() | pl.col("eventId").is_first_distinct()
    ).with_columns(
        pl.col("accountId").str.to_lowercase(),
        pl.col("quantity").str.to_decimal(scale=12),
        (pl.col("billable").str.to_lowercase() == "true").alias("billable"),
    )
    totals = first.group_by("accountId", "pricingUnit", "customUnit").agg(
        pl.len().alias("events"),
        pl.col("quantity").sum(),
        pl.col("quantity").filter(pl.col("billable")).sum().alias("billableQuantity"),
    )
    return comparable(totals.to_dicts())


def comparable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows keyed and valued so two sources compare exactly (Decimal, sorted)."""
    normal = [
        {
            "accountId": row["accountId"],
            "pricingUnit": row["pricingUnit"] or None,
            "customUnit": row["customUnit"] or None,
            "events": int(row["events"]),
            "quantity": Decimal(str(row["quantity"] or 0)),
            "billableQuantity": Decimal(str(row["billableQuantity"] or 0)),
        }
        for row in rows
    ]
    return sorted(
        normal, key=lambda r: (r["accountId"], r["pricingUnit"] or "", r["customUnit"] or "")
    )
