"""Deciding, for a batch, which events are new, which are duplicates and which are redeliveries.

Two different things look alike and must not be confused:
- a *duplicate* is another event carrying an eventId already counted (it is counted as a
  duplicate of its upload, once);
- a *redelivery* is the same event (same upload and row) seen again, because a producer
  re-published an upload or a batch was re-consumed; it changes nothing at all.
Provenance (uploadRef, rowNumber) tells them apart; events without provenance can only be
duplicates. Everything here is lists in, lists out: the store supplies what it already knows.

One source row may travel as several events: a Solvimon row sends one per meter value,
all carrying the row's eventId (its Event reference). They are *siblings*: the first row
to bring an eventId owns it, and every sibling of that row counts, in this batch or a
later one; any other row bringing the eventId is a duplicate in whole. The store records
the owner's first event as the eventId's, and the other siblings as settled `accepted`
rows, so that a sibling seen again is a redelivery. `eventsPerRow` (1 when absent) maps a
rowNumber to its source row (`schemas.provenance`).

A *replayed* event (`meterpipe dlq replay`) is the one exception to "seen before changes
nothing": if its row was dead-lettered, it gets a second chance and, when it now counts,
is *revived*: the store moves that row from dead-lettered to its new outcome.

Most events of a batch are plainly new: their eventId and provenance occur once in the
batch, and the store knows neither. Only the others go through the joins that tell copies,
redeliveries and duplicates apart; whether an event repeats within its batch is worked out
by `mark_repeats` while the batch before it commits (`consumers/batch.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from consumers.content_digest import FIRST_ARRIVAL

__all__ = [
    "ACCEPTED",
    "DEAD_LETTER",
    "EVENTS_PER_ROW_COLUMN",
    "REPEATED",
    "Classified",
    "classify",
    "mark_repeats",
]

PROVENANCE = ["uploadRef", "rowNumber"]
DEAD_LETTER = "dead_letter"
ACCEPTED = "accepted"  # the settled outcome of a sibling counted with its row's owner
EVENTS_PER_ROW_COLUMN = "eventsPerRow"
REPEATED = "repeated"  # another event of the batch has the same eventId or provenance
_POSITION = "_position"
_DOUBTFUL = "_doubtful"


@dataclass(frozen=True)
class Classified:
    """A batch split by what each event means for the totals."""

    accepted: pl.DataFrame  # every event that counts
    claimed: pl.DataFrame  # the accepted events whose eventId the store records as theirs
    siblings: pl.DataFrame  # provenance of the other accepted events (settled `accepted`)
    duplicates: pl.DataFrame
    dead_lettered: pl.DataFrame
    redelivered: int
    revived: pl.DataFrame  # provenance of replayed rows no longer dead-lettered


def _first_unsettled(frame: pl.DataFrame, settled: pl.DataFrame) -> pl.DataFrame:
    """Keep the first copy of each provenance that has no outcome in the store yet.

    A replayed copy of a dead-lettered row counts as unsettled (it may be revived).
    """
    first_copy = pl.col("uploadRef").is_null() | pl.struct(PROVENANCE).is_first_distinct()
    replayed = pl.col("replayed") if "replayed" in frame.columns else pl.lit(False)
    # Joins never match null keys, so events without provenance always stay.
    matched = frame.filter(first_copy).join(
        settled.select(*PROVENANCE, pl.col("outcome").alias("_settled")),
        on=PROVENANCE, how="left", maintain_order="left",
    )  # fmt: skip
    open_row = pl.col("_settled").is_null() | (replayed & (pl.col("_settled") == DEAD_LETTER))
    return matched.filter(open_row)


def mark_repeats(events: pl.DataFrame) -> pl.DataFrame:
    """`events` with the column REPEATED, which depends on the batch alone.

    Finding repeats hashes every eventId and provenance of the batch: a third of what
    classifying cost, done while no store is waiting. Events without provenance count as
    repeats of each other: they only go the longer way.
    """
    repeated = pl.col("eventId").is_duplicated() | pl.struct(PROVENANCE).is_duplicated()
    return events.with_columns(repeated.alias(REPEATED))


def classify(
    events: pl.DataFrame,
    dead_lettered: pl.DataFrame,
    known: pl.DataFrame,
    settled: pl.DataFrame,
) -> Classified:
    """Split a batch's valid `events` into accepted and duplicates, dropping redeliveries.

    `known` maps eventIds of this batch already in the store to their provenance
    (eventId, uploadRef, rowNumber); `settled` lists provenance already counted as a
    duplicate or dead letter, with that `outcome`. Batch order decides which of two copies
    is first. Events may carry a boolean `replayed` column (see the module docstring), and
    REPEATED (else it is worked out here); the frames returned carry neither REPEATED nor
    any other column of their own.

    An event that repeats nothing in the batch, whose eventId the store does not know and
    whose row number no settled row has, is accepted as it stands: nothing can make it a
    copy, a redelivery or a duplicate. The rest (a few percent of a usual batch) are
    classified by `_classify_doubtful`; every event they could be confused with is among
    them, so they are classified as they would be within the whole batch.
    """
    marked = events if REPEATED in events.columns else mark_repeats(events)
    doubtful = (
        pl.col(REPEATED)
        | pl.col("eventId").is_in(known["eventId"].implode())
        | pl.col("rowNumber").is_in(settled["rowNumber"].implode())
    ).fill_null(True)
    indexed = marked.with_row_index(_POSITION).with_columns(doubtful.alias(_DOUBTFUL))
    split = _classify_doubtful(
        indexed.filter(_DOUBTFUL).drop(REPEATED, _DOUBTFUL), dead_lettered, known, settled
    )
    first_seen = ~pl.col(_DOUBTFUL) | pl.col(_POSITION).is_in(split.accepted[_POSITION].implode())
    accepted = indexed.filter(first_seen)
    claimed = accepted
    if split.siblings.height:
        claimed = accepted.filter(~pl.col(_POSITION).is_in(split.siblings[_POSITION].implode()))
    scratch = [_POSITION, REPEATED, _DOUBTFUL]
    return Classified(
        accepted=accepted.drop(scratch),
        claimed=claimed.drop(scratch),
        siblings=split.siblings.select(
            *PROVENANCE, *(name for name in FIRST_ARRIVAL if name in events.columns)
        ),
        duplicates=split.duplicates.drop(_POSITION),
        dead_lettered=split.dead_lettered,
        redelivered=split.redelivered,
        revived=split.revived,
    )


def _classify_doubtful(
    events: pl.DataFrame,
    dead_lettered: pl.DataFrame,
    known: pl.DataFrame,
    settled: pl.DataFrame,
) -> Classified:
    """`classify`, every event joined against the batch and the store."""
    # One row per eventId: its owner's first event (a store holds one; be safe anyway).
    owners = known.unique("eventId", keep="first", maintain_order=True).select(
        "eventId",
        pl.col("uploadRef").alias("_knownRef"),
        pl.col("rowNumber").alias("_knownRow"),
        pl.lit(True).alias("_known"),
    )
    fresh = _first_unsettled(events, settled).join(
        owners, on="eventId", how="left", maintain_order="left"
    )
    same_event = (pl.col("uploadRef") == pl.col("_knownRef")) & (
        pl.col("rowNumber") == pl.col("_knownRow")
    )
    fresh = fresh.filter(~same_event.fill_null(False))
    per_row = pl.col(EVENTS_PER_ROW_COLUMN) if EVENTS_PER_ROW_COLUMN in fresh.columns else pl.lit(1)
    source_row = pl.col("rowNumber") // per_row
    # A sibling of the stored owner's row, or of the row that brings the eventId first here.
    of_stored_owner = (pl.col("uploadRef") == pl.col("_knownRef")) & (
        source_row == pl.col("_knownRow") // per_row
    )
    of_first_row = (
        (pl.col("uploadRef") == pl.col("uploadRef").first().over("eventId"))
        & (source_row == source_row.first().over("eventId"))
    ).fill_null(False)
    first_of_id = pl.col("eventId").is_first_distinct()
    unknown = pl.col("_known").is_null()
    is_new = (unknown & (first_of_id | of_first_row)) | of_stored_owner.fill_null(False)
    fresh = fresh.with_columns(is_new.alias("_new"), (unknown & first_of_id).alias("_claims"))
    scratch = ["_knownRef", "_knownRow", "_known", "_settled", "_new", "_claims"]
    revived = fresh.filter(pl.col("_settled") == DEAD_LETTER).select(PROVENANCE)
    accepted = fresh.filter("_new")
    siblings = accepted.filter(~pl.col("_claims")).drop(scratch)
    accepted, duplicates = accepted.drop(scratch), fresh.filter(~pl.col("_new")).drop(scratch)
    letters = _first_unsettled(dead_lettered, settled).drop("_settled")
    redelivered = events.height + dead_lettered.height
    redelivered -= accepted.height + duplicates.height + letters.height
    return Classified(accepted, accepted, siblings, duplicates, letters, redelivered, revived)
