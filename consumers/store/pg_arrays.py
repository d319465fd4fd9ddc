"""A frame's columns as PostgreSQL array literals, built by polars in bulk.

A batch's per-event data reaches PostgreSQL as arrays that `unnest` expands. Handing
psycopg Python lists makes it adapt every element in Python: with 100,000 events a
batch that is most of the consumer's time. Each column here becomes one `{...}` literal
string, escaped and joined by polars, that the server's array parser reads; the
statement casts it (`%s::bigint[]`, `%s::text[]`).
"""

from __future__ import annotations

import polars as pl

__all__ = ["array_literals"]


def _element(name: str, dtype: pl.DataType) -> pl.Expr:
    """One column's elements as array-literal items: text quoted and escaped, NULL bare."""
    column = pl.col(name)
    if dtype == pl.String:
        # Inside double quotes only a backslash and a double quote need escaping.
        escaped = column.str.replace_all("\\", "\\\\", literal=True).str.replace_all(
            '"', '\\"', literal=True
        )
        column = pl.concat_str(pl.lit('"'), escaped, pl.lit('"'))
    elif dtype.is_integer() or dtype == pl.Null:
        column = column.cast(pl.String)
    else:
        raise TypeError(f"no array literal for column {name!r} of type {dtype}")
    return column.fill_null("NULL")


def array_literals(frame: pl.DataFrame) -> list[str]:
    """Each column of `frame` (text or integer) as one PostgreSQL array literal."""
    items = [
        pl.concat_str(pl.lit("{"), _element(name, dtype).str.join(","), pl.lit("}")).alias(name)
        for name, dtype in frame.schema.items()
    ]
    return list(frame.select(items).row(0)) if items else []
