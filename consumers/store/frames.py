"""Batch frames every store backend derives the same way before writing them."""

from __future__ import annotations

import polars as pl

from consumers.dedupe import Classified

__all__ = ["OUTCOMES", "PROVENANCE", "PROVENANCE_SCHEMA", "progress_by_upload", "provenance_of"]

PROVENANCE_SCHEMA = {"uploadRef": pl.String, "rowNumber": pl.Int64}
PROVENANCE = list(PROVENANCE_SCHEMA)
OUTCOMES = ("accepted", "duplicates", "dead_lettered")


def provenance_of(frame: pl.DataFrame) -> pl.DataFrame:
    """The (uploadRef, rowNumber) of the rows that have one."""
    return frame.select(PROVENANCE).drop_nulls()


def progress_by_upload(classified: Classified) -> pl.DataFrame:
    """Per upload: how many of its events this batch accepted, found duplicate, dead-lettered."""
    parts = [
        frame.select("uploadRef").drop_nulls().with_columns(pl.lit(name).alias("outcome"))
        for frame, name in zip(
            (classified.accepted, classified.duplicates, classified.dead_lettered),
            OUTCOMES,
            strict=True,
        )
    ]
    return (
        pl.concat(parts)
        .group_by("uploadRef")
        .agg((pl.col("outcome") == name).sum().alias(name) for name in OUTCOMES)
    )
