"""How an event's provenance (uploadRef, rowNumber) names the row it came from.

Both sides read it: producers number events by it, and consumers use it to tell the events
of one source row apart from the same row sent again. An AppDirect row is one event,
numbered by its row. A Solvimon row is one event too (its Event reference), but it travels
as one message per meter value it fills: meter k (from 1) of row r is numbered
r * EVENTS_PER_ROW + k, so 17002 reads "row 17, second meter".
"""

from __future__ import annotations

from typing import Final

import polars as pl

__all__ = ["EVENTS_PER_ROW", "events_per_row"]

EVENTS_PER_ROW: Final = 1000


def events_per_row(source_format: pl.Expr) -> pl.Expr:
    """How many rowNumbers a source row spans, by the event's sourceFormat: the source row
    of an event is rowNumber // this."""
    return pl.when(source_format == "solvimon").then(EVENTS_PER_ROW).otherwise(1)
