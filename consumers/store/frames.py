"""Batch frames every store backend derives the same way before writing them."""

from __future__ import annotations

import polars as pl

from consumers.dedupe import ACCEPTED, DEAD_LETTER, Classified

__all__ = [
    "OUTCOMES",
    "PROVENANCE",
    "PROVENANCE_SCHEMA",
    "SETTLED_SCHEMA",
    "progress_by_upload",
    "provenance_of",
    "settled_outcomes",
]

PROVENANCE_SCHEMA = {"uploadRef": pl.String, "rowNumber": pl.Int64}
PROVENANCE = list(PROVENANCE_SCHEMA)
SETTLED_SCHEMA = {**PROVENANCE_SCHEMA, "outcome": pl.String}
OUTCOMES = ("accepted", "duplicates", "dead_lettered")


def provenance_of(frame: pl.DataFrame) -> pl.DataFrame:
    """The (uploadRef, rowNumber) of the rows that have one."""
    return frame.select(PROVENANCE).drop_nulls()


def settled_outcomes(classified: Classified) -> list[tuple[pl.DataFrame, str]]:
    """The rows a batch settles, each frame with the outcome a store records for its rows:
    a later copy of one of them is a redelivery."""
    return [
        (classified.duplicates, "duplicate"),
        (classified.dead_lettered, DEAD_LETTER),
        (classified.siblings, ACCEPTED),
    ]


def progress_by_upload(classified: Classified) -> pl.DataFrame:
    """Per upload: how many of its events this batch accepted, found duplicate, dead-lettered.

    A revived row (replayed after being dead-lettered) takes one off its upload's
    dead-lettered count, since its new outcome is counted instead.
    """
    outcomes = (classified.accepted, classified.duplicates, classified.dead_lettered)
    # Each frame counted by upload on its own, then the few rows summed: concatenating a
    # batch's rows with an outcome label first took 6 ms per 100k events, this 3-5.
    parts = [_count_by_upload(frame, name) for frame, name in zip(outcomes, OUTCOMES, strict=True)]
    parts.append(_count_by_upload(classified.revived, "dead_lettered", sign=-1))
    counted = pl.concat(parts, how="diagonal")
    return counted.group_by("uploadRef").agg(pl.col(name).sum() for name in OUTCOMES)


def _count_by_upload(frame: pl.DataFrame, name: str, sign: int = 1) -> pl.DataFrame:
    """Rows of `frame` per uploadRef (those without one left out), as column `name`."""
    rows = frame.select("uploadRef").drop_nulls().group_by("uploadRef")
    return rows.agg((pl.len().cast(pl.Int64) * sign).alias(name))
