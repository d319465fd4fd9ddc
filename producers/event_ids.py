"""Deterministic eventIds for rows that came without one.

An eventId is the UUIDv5 of (upload key, row number): publishing the same upload again,
after a crash or a broker restart, yields the very same ids, so dedupe absorbs the copy.
The upload key is the file's SHA-256 (or the caller's reference for a stream).
"""

from __future__ import annotations

import uuid

import polars as pl

__all__ = ["EVENT_ID_NAMESPACE", "assign_event_ids", "event_id_for"]

ROW_NUMBER = "rowNumber"
EVENT_ID_NAMESPACE = uuid.UUID("5d0f3a52-8c3e-4b8e-9a57-6d6574657270")


def event_id_for(upload_key: str, row: int) -> str:
    """The eventId meterpipe assigns to `row` of the upload keyed `upload_key`."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{upload_key}:{row}"))


def assign_event_ids(frame: pl.DataFrame, upload_key: str) -> pl.DataFrame:
    """Fill empty eventIds and flag them in `eventIdAssigned`."""
    missing = pl.col("eventId").is_null() | (pl.col("eventId") == "")
    flagged = frame.with_columns(missing.alias("eventIdAssigned"))
    rows = flagged.filter(pl.col("eventIdAssigned"))[ROW_NUMBER].to_list()
    if not rows:
        return flagged
    assigned = pl.Series([event_id_for(upload_key, row) for row in rows], dtype=pl.String)
    ids = flagged["eventId"].scatter(
        flagged.with_row_index().filter(pl.col("eventIdAssigned"))["index"], assigned
    )
    return flagged.with_columns(ids)
