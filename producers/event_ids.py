"""Deterministic eventIds for rows that came without one.

An eventId is the UUIDv5 of (upload key, row number): publishing the same upload again,
after a crash or a broker restart, yields the very same ids, so dedupe absorbs the copy.
The upload key is the file's SHA-256 (or the caller's reference for a stream).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import polars as pl

__all__ = ["EVENT_ID_NAMESPACE", "assign_event_ids", "event_ids_for", "uuid5_texts"]

ROW_NUMBER = "rowNumber"
EVENT_ID_NAMESPACE = uuid.UUID("5d0f3a52-8c3e-4b8e-9a57-6d6574657270")
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_UUID_HEX_PLACES = [i for i in range(36) if i not in (8, 13, 18, 23)]


def uuid5_texts(namespace: uuid.UUID, names: Sequence[bytes]) -> pl.Series:
    """`str(uuid.uuid5(namespace, name))` of every name (UTF-8 bytes), as a String series.

    SHA-1 has no polars or Arrow kernel, so hashlib digests each name (C code, the one
    per-name Python step); version bits and hex spelling are done for all ids at once.
    """
    prefix, sha1 = namespace.bytes, hashlib.sha1
    digests = b"".join([sha1(prefix + name, usedforsecurity=False).digest()[:16] for name in names])
    raw = np.frombuffer(digests, dtype=np.uint8).reshape(-1, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x50  # version 5
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # the RFC 4122 variant
    text = np.full((len(raw), 36), ord("-"), dtype=np.uint8)
    text[:, _UUID_HEX_PLACES] = _HEX[np.stack([raw >> 4, raw & 0x0F], axis=2).reshape(-1, 32)]
    return pl.Series("eventId", text.view("S36").ravel(), dtype=pl.Binary).cast(pl.String)


def event_ids_for(upload_key: str, rows: Sequence[int] | npt.NDArray[np.int64]) -> pl.Series:
    """The eventIds meterpipe assigns to `rows` of the upload keyed `upload_key`:
    `uuid.uuid5(EVENT_ID_NAMESPACE, f"{upload_key}:{row}")` as text."""
    start = f"{upload_key}:".encode()
    return uuid5_texts(EVENT_ID_NAMESPACE, [b"%s%d" % (start, row) for row in list(rows)])


def assign_event_ids(frame: pl.DataFrame, upload_key: str) -> pl.DataFrame:
    """Fill empty eventIds and flag them in `eventIdAssigned`."""
    missing = pl.col("eventId").is_null() | (pl.col("eventId") == "")
    flagged = frame.with_columns(missing.alias("eventIdAssigned"))
    # Where the empty ids are, and their rows, found in one pass over two columns.
    empty = flagged.select(pl.int_range(pl.len()).alias("at"), ROW_NUMBER, "eventIdAssigned")
    empty = empty.filter("eventIdAssigned")
    if not empty.height:
        return flagged
    assigned = event_ids_for(upload_key, empty[ROW_NUMBER].to_list())
    return flagged.with_columns(flagged["eventId"].scatter(empty["at"], assigned))
