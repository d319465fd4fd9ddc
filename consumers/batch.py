"""Turning one consumed batch of raw messages into valid events and dead letters.

Columnar from end to end: the batch is decoded in one go, validated with the same
polars rules the publisher used (the topic may have other producers), and each event
gets the UTC day its usage belongs to. No broker here: columns in, frames out.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from consumers.content_digest import COMPARED, DIGEST, POSITION, with_digests
from consumers.dead_letters import HEADER_MAX_CHARS, DeadLetter
from consumers.dedupe import EVENTS_PER_ROW_COLUMN, mark_repeats
from consumers.event_hash import with_id_hashes
from schemas.avro_decode import with_nulls_at
from schemas.codec import EventCodec
from schemas.period_calendar import PeriodCalendar
from schemas.periods import INSTANT, apply_period_rules
from schemas.provenance import events_per_row
from schemas.validation import RowError, utc_instant, validate_events

__all__ = [
    "POSITION",
    "PreparedBatch",
    "RawBatch",
    "kafka_position",
    "prepare_batch",
    "split_position",
]

INDEX = "_index"
# A message's POSITION in the topic, one int64: its partition above OFFSET_BITS, its offset below.
OFFSET_BITS = 48
SOURCE_ROW = "_sourceRow"
# What a `too_large` dead letter keeps of the message: enough to recognise it.
TOO_LARGE_KEPT_BYTES = 64 * 1024


@dataclass(frozen=True)
class RawBatch:
    """Consumed messages as columns: positions as arrays, keys and values as Arrow large
    binary arrays (one buffer each, as the consumer reads them).

    `replayed` holds the indexes of messages re-driven from the dead-letter topic.
    """

    partitions: npt.NDArray[np.int32]
    offsets: npt.NDArray[np.int64]
    keys: pa.Array
    values: pa.Array
    replayed: frozenset[int] = frozenset()

    @functools.cached_property
    def _bounds(self) -> dict[int, tuple[int, int]]:
        """Per partition, its first offset in the batch and the offset after its last."""
        bounds = {}
        for partition in np.unique(self.partitions).tolist():
            offsets = self.offsets[self.partitions == partition]
            bounds[partition] = (int(offsets.min()), int(offsets.max()) + 1)
        return bounds

    def first_offsets(self) -> dict[int, int]:
        """Per partition, the offset of the first message in the batch."""
        return {partition: first for partition, (first, _) in self._bounds.items()}

    def next_offsets(self) -> dict[int, int]:
        """Per partition, the offset after the last message in the batch."""
        return {partition: after for partition, (_, after) in self._bounds.items()}


def kafka_position(partition: int, offset: int) -> int:
    """A message's partition and offset as one int64 (see POSITION)."""
    return (partition << OFFSET_BITS) | offset


def split_position(position: int) -> tuple[int, int]:
    """The (partition, offset) of a `kafka_position`."""
    return position >> OFFSET_BITS, position & ((1 << OFFSET_BITS) - 1)


# What a store reads of an event, besides its day: carrying no other column keeps the
# store's joins and filters from copying text that no total depends on.
STORED_COLUMNS = (
    "eventId", "uploadRef", "rowNumber", "accountId", "pricingUnit", "customUnit", "quantity",
    "billable",
)  # fmt: skip


@dataclass(frozen=True)
class PreparedBatch:
    """What a batch holds: events that may count, and messages that never can.

    `events` has the `STORED_COLUMNS`, `eventsPerRow` (how rowNumbers map to source rows,
    see `schemas.provenance`), `day` (pl.Date), `replayed` (pl.Boolean), and what
    deduplication needs of the batch alone: the eventId hashes and the repeats (`idHash`,
    `repeated`), worked out here so that the store's commit, which batches wait on, does not;
    and what telling a conflicting duplicate needs: its content `digest` and its Kafka
    `position`. `compared` holds the compared fields as given (`content_digest.COMPARED`,
    and `sourceFormat`) by `position`: a store reads them for the few events in conflict.
    """

    events: pl.DataFrame
    dead_letters: list[DeadLetter]
    compared: pl.DataFrame | None = None


def _letter(raw: RawBatch, index: int, reason: str, message: str) -> DeadLetter:
    key = raw.keys[index].as_py()
    return DeadLetter(
        key=key.decode("utf-8", "replace") if key is not None else None,
        value=raw.values[index].as_py() or b"",
        reason=reason,
        message=message,
        partition=int(raw.partitions[index]),
        offset=int(raw.offsets[index]),
        replayed=index in raw.replayed,
    )


def _sizes(column: pa.Array) -> npt.NDArray[np.int64]:
    """The length of each value, 0 for a null."""
    sizes: npt.NDArray[np.int64] = pc.binary_length(column).fill_null(0).to_numpy()
    return sizes


def _oversized(raw: RawBatch, max_bytes: int) -> dict[int, int]:
    """The size of each message over `max_bytes` (key plus value, as a broker counts), by index."""
    sizes = _sizes(raw.keys) + _sizes(raw.values)
    return {int(index): int(sizes[index]) for index in np.flatnonzero(sizes > max_bytes)}


def _too_large(raw: RawBatch, index: int, size: int, max_bytes: int) -> DeadLetter:
    """A message over the size limit: its first bytes, its real size and its SHA-256."""
    value = raw.values[index].as_py() or b""
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
    values = with_nulls_at(raw.values, sorted(oversized)) if oversized else raw.values
    decoded = codec.decode(values)
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
    positions = (raw.partitions.astype(np.int64) << OFFSET_BITS) | raw.offsets
    events = valid.drop("rowNumber").rename({SOURCE_ROW: "rowNumber"})
    events = with_digests(events).with_columns(
        pl.Series(POSITION, positions[events[INDEX].to_numpy()])
    )
    compared = events.select(POSITION, *COMPARED, "sourceFormat")
    events = events.select(
        *STORED_COLUMNS,
        DIGEST,
        POSITION,
        events_per_row(pl.col("sourceFormat")).alias(EVENTS_PER_ROW_COLUMN),
        pl.col(INSTANT).dt.date().alias("day"),  # totals are kept per UTC day
        pl.col(INDEX).is_in(sorted(raw.replayed)).alias("replayed"),
    )
    return PreparedBatch(mark_repeats(with_id_hashes(events)), letters, compared)
