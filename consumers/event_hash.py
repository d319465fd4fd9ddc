"""A stable 64-bit hash of eventIds, computed for a whole column at once.

The dedupe index is keyed by this hash rather than by the eventId text: an 8-byte
integer key makes the index a fraction of the size and inserts about twice as fast.
It is only an index: a match is confirmed by comparing the full eventId, so a
collision can never turn a new event into a duplicate. FNV-1a is used because it is
fixed by its definition (polars' own hash may change between versions); it runs in C
(`consumers/_seen_search.c`) over the Arrow string buffers, without the GIL.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from consumers._seen_search import fnv1a_64
from schemas.arrow_text import utf8_with_bounds

__all__ = ["ID_HASH", "event_id_hashes", "text_hashes", "with_id_hashes"]

ID_HASH = "idHash"


def text_hashes(texts: pl.Series, name: str) -> pl.Series:
    """FNV-1a 64 of each text's UTF-8 bytes (a null as ""), as signed 64-bit integers."""
    utf8, bounds = utf8_with_bounds(texts.cast(pl.String))
    return pl.Series(name, np.frombuffer(fnv1a_64(bounds, utf8), dtype=np.int64))


def event_id_hashes(event_ids: pl.Series) -> pl.Series:
    """FNV-1a 64 of each id's UTF-8 bytes, as signed 64-bit integers (SQLite's INTEGER)."""
    return text_hashes(event_ids, ID_HASH)


def with_id_hashes(events: pl.DataFrame) -> pl.DataFrame:
    """`events` with the column ID_HASH, unless it has it: each batch is hashed once."""
    if ID_HASH in events.columns:
        return events
    return events.with_columns(event_id_hashes(events["eventId"]))
