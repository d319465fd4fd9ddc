"""Deciding, for a batch, which events are new, which are duplicates and which are redeliveries.

Two different things look alike and must not be confused:
- a *duplicate* is another event carrying an eventId already counted (it is counted as a
  duplicate of its upload, once);
- a *redelivery* is the same event (same upload and row) seen again, because a producer
  re-published an upload or a batch was re-consumed; it changes nothing at all.
Provenance (uploadRef, rowNumber) tells them apart; events without provenance can only be
duplicates. Everything here is lists in, lists out: the store supplies what it already knows.

A *replayed* event (`meterpipe dlq replay`) is the one exception to "seen before changes
nothing": if its row was dead-lettered, it gets a second chance and, when it now counts,
is *revived*: the store moves that row from dead-lettered to its new outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

__all__ = ["Classified", "classify"]

PROVENANCE = ["uploadRef", "rowNumber"]
DEAD_LETTER = "dead_letter"


@dataclass(frozen=True)
class Classified:
    """A batch split by what each event means for the totals."""

    accepted: pl.DataFrame
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
    is first. Events may carry a boolean `replayed` column (see the module docstring).
    """
    was_accepted = known.select(
        "eventId",
        pl.col("uploadRef").alias("_knownRef"),
        pl.col("rowNumber").alias("_knownRow"),
        pl.lit(True).alias("_known"),
    )
    fresh = _first_unsettled(events, settled).join(
        was_accepted, on="eventId", how="left", maintain_order="left"
    )
    same_event = (pl.col("uploadRef") == pl.col("_knownRef")) & (
        pl.col("rowNumber") == pl.col("_knownRow")
    )
    fresh = fresh.filter(~same_event.fill_null(False))
    is_new = pl.col("_known").is_null() & pl.col("eventId").is_first_distinct()
    scratch = ["_knownRef", "_knownRow", "_known", "_settled"]
    revived = fresh.filter(pl.col("_settled") == DEAD_LETTER).select(PROVENANCE)
    accepted = fresh.filter(is_new).drop(scratch)
    duplicates = fresh.filter(~is_new).drop(scratch)
    letters = _first_unsettled(dead_lettered, settled).drop("_settled")
    redelivered = events.height + dead_lettered.height
    redelivered -= accepted.height + duplicates.height + letters.height
    return Classified(accepted, duplicates, letters, redelivered, revived)
