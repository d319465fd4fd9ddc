"""Turning one consumed batch of raw messages into valid events and dead letters.

Columnar from end to end: the batch is decoded in one go, validated with the same
polars rules the publisher used (the topic may have other producers), and each event
gets the UTC day its usage belongs to. No broker here: lists in, frames out.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

import polars as pl

from consumers.dead_letters import HEADER_MAX_CHARS, DeadLetter
from consumers.dedupe import mark_repeats
from consumers.event_hash import with_id_hashes
from meterpipe.periods import INSTANT, PeriodCalendar, apply_period_rules
from schemas.codec import EventCodec
from schemas.validation import RowError, utc_instant, validate_events

__all__ = ["PreparedBatch", "RawBatch", "prepare_batch"]

INDEX = "_index"
SOURCE_ROW = "_sourceRow"
# What a `too_large` dead letter keeps of the message: enough to recognise it.
TOO_LARGE_KEPT_BYTES = 64 * 1024


@dataclass(frozen=True)
class RawBatch:
    """Consumed messages as parallel lists (positions, keys and values).

    `replayed` holds the indexes of messages re-driven from the dead-letter topic.
    """

    partitions: Sequence[int]
    offsets: Sequence[int]
    keys: Sequence[bytes | None]
    values: Sequence[bytes | None]
    replayed: frozenset[int] = frozenset()

    @functools.cached_property
    def _bounds(self) -> pl.DataFrame:
        frame = pl.DataFrame({"partition": self.partitions, "offset": self.offsets})
        offset = pl.col("offset")
        return frame.group_by("partition").agg(offset.min().alias("first"), offset.max() + 1)

    def first_offsets(self) -> dict[int, int]:
        """Per partition, the offset of the first message in the batch."""
        return dict(self._bounds.select("partition", "first").iter_rows())

    def next_offsets(self) -> dict[int, int]:
        """Per partition, the offset after the last message in the batch."""
        return dict(self._bounds.select("partition", "offset").iter_rows())


# What a store reads of an event, besides its day: carrying no other column keeps the
# store's joins and filters from copying text that no total depends on.
STORED_COLUMNS = (
    "eventId", "uploadRef", "rowNumber", "accountId", "pricingUnit", "customUnit", "quantity",
    "billable",
)  # fmt: skip


@dataclass(frozen=True)
class PreparedBatch:
    """What a batch holds: events that may count, and messages that never can.

    `events` has the `STORED_COLUMNS`, `day` (pl.Date), `replayed` (pl.Boolean), and what
    deduplication needs of the batch alone: the eventId hashes and the repeats (`idHash`,
    `repeated`), worked out here so that the store's commit, which batches wait on, does not.
    """

    events: pl.DataFrame
    dead_letters: list[DeadLetter]


def _letter(raw: RawBatch, index: int, reason: str, message: str) -> DeadLetter:
    key = raw.keys[index]
    return DeadLetter(
        key=key.decode("utf-8", "replace") if key is not None else None,
        value=raw.values[index] or b"",
        reason=reason,
        message=message,
        partition=raw.partitions[index],
        offset=raw.offsets[index],
        replayed=index in raw.replayed,
    )


def _oversized(raw: RawBatch, max_bytes: int) -> dict[int, int]:
    """The size of each message over `max_bytes` (key plus value, as a broker counts), by index.

    The longest key plus the longest value bounds every message: when that fits, which is
    almost always, no message is measured one by one.
    """
    longest_key = max(map(len, filter(None, raw.keys)), default=0)
    if longest_key + max(map(len, filter(None, raw.values)), default=0) <= max_bytes:
        return {}
    pairs = zip(raw.keys, raw.values, strict=True)
    sizes = (len(key or b"") + len(value or b"") for key, value in pairs)
    return {index: size for index, size in enumerate(sizes) if size > max_bytes}


def _too_large(raw: RawBatch, index: int, size: int, max_bytes: int) -> DeadLetter:
    """A message over the size limit: its first bytes, its real size and its SHA-256."""
    value = raw.values[index] or b""
    message = f"{size} bytes (key and value), over the {max_bytes}-byte limit"
    letter = _letter(raw, index, "too_large", message)
    return replace(
        letter,
        key=letter.key[:HEADER_MAX_CHARS] if letter.key is not None else None,
        value=value[: min(TOO_LARGE_KEPT_BYTES, max_bytes // 2)],
        original_size=len(value),
        original_sha256=hashlib.sha256(value).hexdigest(),
    )


def _invalid_letters(
    raw: RawBatch, invalid: pl.DataFrame, errors: list[RowError]
) -> list[DeadLetter]:
    """One dead letter per invalid event, carrying its first reason and every message."""
    by_index: dict[int, list[RowError]] = {}
    for error in errors:
        by_index.setdefault(error.row, []).append(error)
    letters = []
    for index, upload_ref, row in invalid.select(INDEX, "uploadRef", SOURCE_ROW).iter_rows():
        found = by_index.get(index, [])
        reason = found[0].reason if found else "invalid"
        message = "; ".join(f"{e.column}: {e.message} ({e.value!r})" for e in found)
        letter = _letter(raw, index, reason, message)
        letters.append(replace(letter, upload_ref=upload_ref, row_number=row))
    return letters


def prepare_batch(
    raw: RawBatch, codec: EventCodec, calendar: PeriodCalendar, max_message_bytes: int
) -> PreparedBatch:
    """Decode, validate and date a batch; everything that fails becomes a dead letter.

    Messages over `max_message_bytes` are refused unread (`too_large`): not every broker
    enforces the limit. The billing-period rules run again here: an event published
    before its period was closed, but consumed after, is refused like a late row in a file.
    """
    oversized = _oversized(raw, max_message_bytes)
    letters = [_too_large(raw, i, oversized[i], max_message_bytes) for i in sorted(oversized)]
    if oversized:
        decoded = codec.decode([None if i in oversized else v for i, v in enumerate(raw.values)])
    else:
        decoded = codec.decode(raw.values)
    letters += [
        _letter(raw, index, reason, reason)
        for index, reason in decoded.failures
        if index not in oversized
    ]
    # Validation names rows by `rowNumber`; here a row is its place in the batch.
    indexed = decoded.frame.rename({"rowNumber": SOURCE_ROW}).with_columns(
        pl.Series(INDEX, decoded.positions, dtype=pl.Int64),
        pl.Series("rowNumber", decoded.positions, dtype=pl.Int64),
    )
    result = validate_events(indexed, max_errors=indexed.height)
    dated = result.valid.with_columns(utc_instant(pl.col("eventDate")).alias(INSTANT))
    valid, _, late_errors = apply_period_rules(dated, calendar)
    if valid.height < indexed.height:  # the usual batch has no invalid event to look for
        invalid = indexed.join(valid.select(INDEX), on=INDEX, how="anti")
        letters += _invalid_letters(raw, invalid, result.errors + late_errors)
    events = valid.drop("rowNumber").rename({SOURCE_ROW: "rowNumber"})
    events = events.select(
        *STORED_COLUMNS,
        pl.col(INSTANT).dt.date().alias("day"),  # totals are kept per UTC day
        pl.col(INDEX).is_in(sorted(raw.replayed)).alias("replayed"),
    )
    return PreparedBatch(events=mark_repeats(with_id_hashes(events)), dead_letters=letters)
