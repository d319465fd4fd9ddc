"""Batch frames every store backend derives the same way before writing them."""

from __future__ import annotations

import polars as pl

from consumers.dedupe import Classified

__all__ = [
    "OUTCOMES",
    "PROVENANCE",
    "PROVENANCE_SCHEMA",
    "SETTLED_SCHEMA",
    "progress_by_upload",
    "provenance_of",
]

PROVENANCE_SCHEMA = {"uploadRef": pl.String, "rowNumber": pl.Int64}
PROVENANCE = list(PROVENANCE_SCHEMA)
SETTLED_SCHEMA = {**PROVENANCE_SCHEMA, "outcome": pl.String}
OUTCOMES = ("accepted", "duplicates", "dead_lettered")


def provenance_of(frame: pl.DataFrame) -> pl.DataFrame:
    """The (uploadRef, rowNumber) of the rows that have one."""
    return frame.select(PROVENANCE).drop_nulls()


def progress_by_upload(classified: Classified) -> pl.DataFrame:
    """Per upload: how many of its events this batch accepted, found duplicate, dead-lettered.

    A revived row (replayed after being dead-lettered) takes one off its upload's
    dead-lettered count, since its new outcome is counted instead.
    """
    outcomes = (classified.accepted, classified.duplicates, classified.dead_lettered)
    parts = [
        frame.select("uploadRef")
        .drop_nulls()
        .with_columns(pl.lit(name).alias("outcome"), pl.lit(1).alias("count"))
        for frame, name in zip(outcomes, OUTCOMES, strict=True)
    ]
    parts.append(
        classified.revived.select("uploadRef")
        .drop_nulls()
        .with_columns(pl.lit("dead_lettered").alias("outcome"), pl.lit(-1).alias("count"))
    )
    return (
        pl.concat(parts)
        .group_by("uploadRef")
        .agg(
            pl.col("count").filter(pl.col("outcome") == name).sum().alias(name) for name in OUTCOMES
        )
    )
