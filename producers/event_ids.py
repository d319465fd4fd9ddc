"""Deterministic eventIds for rows that came without one.

An eventId is the UUIDv5 of (upload key, row number): publishing the same upload again,
after a crash or a broker restart, yields the very same ids, so dedupe absorbs the copy.
The upload key is the file's SHA-256 (or the caller's reference for a stream).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import polars as pl

from producers._event_ids import uuid5_texts

__all__ = ["EVENT_ID_NAMESPACE", "assign_event_ids", "event_ids_for"]

ROW_NUMBER = "rowNumber"
EVENT_ID_NAMESPACE = uuid.UUID("5d0f3a52-8c3e-4b8e-9a57-6d6574657270")


def event_ids_for(upload_key: str, rows: Sequence[int] | npt.NDArray[np.int64]) -> list[str]:
    """The eventIds meterpipe assigns to `rows` of the upload keyed `upload_key`:
    `uuid.uuid5(EVENT_ID_NAMESPACE, f"{upload_key}:{row}")` as text.

    Computed in C (`producers/_event_ids.c`): a file without eventIds has one to assign
    per row, and the standard library's uuid5 cost 3.7 s per million.
    """
    name_start = EVENT_ID_NAMESPACE.bytes + f"{upload_key}:".encode()
    return uuid5_texts(name_start, np.ascontiguousarray(rows, dtype=np.int64))


def assign_event_ids(frame: pl.DataFrame, upload_key: str) -> pl.DataFrame:
    """Fill empty eventIds and flag them in `eventIdAssigned`."""
    missing = pl.col("eventId").is_null() | (pl.col("eventId") == "")
    flagged = frame.with_columns(missing.alias("eventIdAssigned"))
    # Where the empty ids are, and their rows, found in one pass over two columns.
    empty = flagged.select(pl.int_range(pl.len()).alias("at"), ROW_NUMBER, "eventIdAssigned")
    empty = empty.filter("eventIdAssigned")
    if not empty.height:
        return flagged
    assigned = event_ids_for(upload_key, empty[ROW_NUMBER].to_numpy())
    ids = flagged["eventId"].scatter(empty["at"], pl.Series(assigned, dtype=pl.String))
    return flagged.with_columns(ids)
