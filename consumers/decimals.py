"""Exact decimal arithmetic when totals are read back.

Python's default decimal context rounds to 28 significant digits, which a large total
with 12 decimals can exceed; every sum here runs in a wide context so that no addition
ever rounds.
"""

from __future__ import annotations

from decimal import Context, Decimal

__all__ = ["EXACT", "format_decimal"]

EXACT = Context(prec=100)


def format_decimal(value: Decimal) -> str:
    """Plain notation without trailing fractional zeros: 1.500 -> "1.5", 2E+1 -> "20"."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
