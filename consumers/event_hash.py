"""Stable 64-bit hashes, computed for a whole column at once: of eventIds, and of rows of
texts (`row_hashes`, the content digests of `consumers.content_digest`).

The dedupe index is keyed by this hash rather than by the eventId text: an 8-byte
integer key makes the index a fraction of the size and inserts about twice as fast.
It is only an index: a match is confirmed by comparing the full eventId, so a
collision can never turn a new event into a duplicate. FNV-1a is used because it is
fixed by its definition (polars' own hash may change between versions); it runs in C
(`consumers/_seen_search.c`) over the Arrow string buffers, without the GIL, and is
stable across versions, as stored hashes and digests must be.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from consumers._seen_search import fnv1a_64, fnv1a_rows
from schemas.arrow_text import utf8_with_bounds

__all__ = ["ID_HASH", "event_id_hashes", "row_hashes", "with_id_hashes"]

ID_HASH = "idHash"


def row_hashes(frame: pl.DataFrame, name: str, decimals: Collection[str] = ()) -> pl.Series:
    """FNV-1a 64 of each row's text, as signed 64-bit integers: its fields, cast to strings,
    written `<bytes>:<text>` (a null as `-`) and joined by `|`; the plain decimals of the
    columns `decimals` as their shortest form (`consumers.content_digest` says which).

    The text is never built: the C pass reads polars' string views where they are.
    """
    columns = [
        (*_string_views(frame[column].cast(pl.String)), column in decimals)
        for column in frame.columns
    ]
    hashes = fnv1a_rows(frame.height, columns)
    return pl.Series(name, np.frombuffer(hashes, dtype=np.int64))


def _string_views(series: pl.Series) -> tuple[int, Any, Any, list[Any]]:
    """A string column as (slice offset, validity, views, data buffers): Arrow's string_view."""
    strings = series.to_arrow(compat_level=pl.CompatLevel.newest())
    if isinstance(strings, pa.ChunkedArray):
        strings = strings.combine_chunks()
    if strings.type != pa.string_view():
        strings = strings.cast(pa.string_view())
    validity, views, *data = strings.buffers()
    return strings.offset, validity, views, data


def event_id_hashes(event_ids: pl.Series) -> pl.Series:
    """FNV-1a 64 of each id's UTF-8 bytes, as signed 64-bit integers (SQLite's INTEGER)."""
    utf8, bounds = utf8_with_bounds(event_ids.cast(pl.String))
    return pl.Series(ID_HASH, np.frombuffer(fnv1a_64(bounds, utf8), dtype=np.int64))


def with_id_hashes(events: pl.DataFrame) -> pl.DataFrame:
    """`events` with the column ID_HASH, unless it has it: each batch is hashed once."""
    if ID_HASH in events.columns:
        return events
    return events.with_columns(event_id_hashes(events["eventId"]))
