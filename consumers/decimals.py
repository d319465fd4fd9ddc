"""Exact decimal arithmetic on the decimal strings the store keeps.

Python's default decimal context rounds to 28 significant digits, which a 20-digit
quantity with 12 decimals already exceeds; every sum here runs in a wide context so that
no addition ever rounds.
"""

from __future__ import annotations

from decimal import Context, Decimal

__all__ = ["EXACT", "add_decimal_strings", "format_decimal"]

EXACT = Context(prec=100)


def add_decimal_strings(left: str, right: str) -> str:
    """left + right, exactly, as a decimal string (the SQLite `dec_add` function)."""
    return str(EXACT.add(Decimal(left), Decimal(right)))


def format_decimal(value: Decimal) -> str:
    """Plain notation without trailing fractional zeros: 1.500 -> "1.5", 2E+1 -> "20"."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
