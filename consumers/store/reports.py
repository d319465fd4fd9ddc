"""Turning stored per-day totals into the answers `meterpipe totals` gives."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from consumers.decimals import EXACT, format_decimal, from_halves
from consumers.store.records import TotalRow

__all__ = ["summarize_totals"]


def summarize_totals(rows: Iterable[tuple[Any, ...]]) -> list[TotalRow]:
    """Sum per-day rows into one row per (account, pricingUnit, customUnit), exactly.

    Each row is (account, pricingUnit, customUnit, events, quantity hi, quantity lo,
    billable hi, billable lo), the halves as `consumers.aggregate` defines them.
    """
    sums: dict[tuple[str, str, str], list[Any]] = {}
    for account, pricing, custom, events, q_hi, q_lo, b_hi, b_lo in rows:
        entry = sums.setdefault((account, pricing, custom), [0, Decimal(0), Decimal(0)])
        entry[0] += events
        entry[1] = EXACT.add(entry[1], from_halves(q_hi, q_lo))
        entry[2] = EXACT.add(entry[2], from_halves(b_hi, b_lo))
    return [
        TotalRow(
            account_id=account,
            pricing_unit=pricing or None,
            custom_unit=custom or None,
            events=events,
            quantity=format_decimal(quantity),
            billable_quantity=format_decimal(billable),
        )
        for (account, pricing, custom), (events, quantity, billable) in sorted(sums.items())
    ]
