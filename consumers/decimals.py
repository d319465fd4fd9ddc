"""Exact decimal arithmetic when totals are read back.

Quantities are summed as integers of 10^-12 units (`DECIMAL_SCALE`: the validation rule
allows at most 12 decimals), and a store keeps a running total as two 64-bit halves,
`hi * HALF + lo`, which plain SQL integer arithmetic adds exactly (`consumers.aggregate`).
Python's default decimal context rounds to 28 significant digits, which a large total
with 12 decimals can exceed; every sum here runs in a wide context so that no addition
ever rounds.
"""

from __future__ import annotations

from decimal import Context, Decimal

__all__ = ["DECIMAL_SCALE", "EXACT", "HALF", "format_decimal", "from_halves"]

DECIMAL_SCALE = 12
HALF = 10**18
EXACT = Context(prec=100)


def from_halves(hi: int, lo: int) -> Decimal:
    """The exact decimal a stored (hi, lo) pair stands for."""
    # scaleb rounds to its context's precision: the default 28 digits would not do.
    return Decimal(hi * HALF + lo).scaleb(-DECIMAL_SCALE, context=EXACT)


def format_decimal(value: Decimal) -> str:
    """Plain notation without trailing fractional zeros: 1.500 -> "1.5", 2E+1 -> "20"."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
