"""Telling which duplicates of a batch conflict with their eventId's first arrival.

A duplicate is compared with the event of the first arrival it re-sends, by content
digest (`consumers.content_digest`): an AppDirect duplicate with the eventId's owner; a
Solvimon meter value k with meter value k of the row that owns the eventId, found at
(ownerRef, ownerRow // 1000 * 1000 + k) among the owner and its settled `accepted`
siblings. That the owner's row left meter k empty is a conflict too (nothing was sent,
now a value is). A first arrival whose digest is unknown (kept before digests were) is
never a conflict. What is not seen: a re-send that leaves empty a meter the first row
filled sends no message for it, so nothing compares it.

Lists in, lists out, like `consumers.dedupe`: the store looks up what `rows_to_look_up`
names and hands it to `find_conflicts`.
"""

from __future__ import annotations

import polars as pl

from consumers.content_digest import COMPARED, DIGEST, POSITION
from consumers.dedupe import EVENTS_PER_ROW_COLUMN, Classified

__all__ = [
    "ARRIVAL_SCHEMA",
    "CONFLICT_SCHEMA",
    "SETTLED_ARRIVAL_SCHEMA",
    "compare_with_first",
    "conflict_rows",
    "find_conflicts",
    "rows_to_look_up",
]

# An event that may be a first arrival: its provenance, digest and Kafka position.
ARRIVAL_SCHEMA = {
    "eventId": pl.String, "uploadRef": pl.String, "rowNumber": pl.Int64,
    DIGEST: pl.Int64, POSITION: pl.Int64,
}  # fmt: skip
# A settled `accepted` row as a store reads it for `find_conflicts`.
SETTLED_ARRIVAL_SCHEMA = {
    "uploadRef": pl.String, "rowNumber": pl.Int64, DIGEST: pl.Int64, POSITION: pl.Int64,
}  # fmt: skip
CONFLICT_SCHEMA = {
    "eventId": pl.String, "uploadRef": pl.String, "rowNumber": pl.Int64,
    "firstRef": pl.String, "firstRow": pl.Int64, "firstPosition": pl.Int64, POSITION: pl.Int64,
}  # fmt: skip
_LOOKUP = "_lookup"
RECORDED_FIELDS = (*COMPARED, "sourceFormat")  # what a conflict keeps of this event


def _arrivals(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame`'s ARRIVAL_SCHEMA columns, null where it lacks them."""
    return frame.select(
        pl.col(name) if name in frame.columns else pl.lit(None, dtype).alias(name)
        for name, dtype in ARRIVAL_SCHEMA.items()
    ).cast(ARRIVAL_SCHEMA)  # type: ignore[arg-type]


def compare_with_first(classified: Classified, known: pl.DataFrame) -> pl.DataFrame:
    """The batch's duplicates, each with the first arrival it is compared with.

    `known` is the store's owners of the batch's eventIds (ARRIVAL_SCHEMA columns); the
    batch's own claims own the others. Adds firstRef, firstRow, firstDigest, firstPosition
    and whether the first arrival is still to be looked up (a sibling, not the owner).
    """
    duplicates = classified.duplicates
    if duplicates.is_empty() or DIGEST not in duplicates.columns:
        extra = {DIGEST: pl.Int64, "firstDigest": pl.Int64, _LOOKUP: pl.Boolean}
        return pl.DataFrame(schema={**CONFLICT_SCHEMA, **extra})
    ids = duplicates["eventId"].implode()
    claims = classified.claimed.filter(pl.col("eventId").is_in(ids))
    owners = pl.concat([_arrivals(known.filter(pl.col("eventId").is_in(ids))), _arrivals(claims)])
    owners = owners.unique("eventId", keep="first", maintain_order=True).select(
        "eventId",
        pl.col("uploadRef").alias("firstRef"),
        pl.col("rowNumber").alias("_ownerRow"),
        pl.col(DIGEST).alias("firstDigest"),
        pl.col(POSITION).alias("firstPosition"),
    )
    per_row = pl.col(EVENTS_PER_ROW_COLUMN) if EVENTS_PER_ROW_COLUMN in duplicates.columns else 1
    first_row = pl.col("_ownerRow") // per_row * per_row + pl.col("rowNumber") % per_row
    compared = duplicates.join(owners, on="eventId", how="inner", maintain_order="left")
    compared = compared.with_columns(first_row.fill_null(pl.col("_ownerRow")).alias("firstRow"))
    lookup = (pl.col("firstRow") != pl.col("_ownerRow")).fill_null(False)
    return compared.with_columns(lookup.alias(_LOOKUP)).drop("_ownerRow")


def rows_to_look_up(compared: pl.DataFrame) -> pl.DataFrame:
    """The (uploadRef, rowNumber) of first arrivals that are settled siblings, not owners."""
    wanted = compared.filter(pl.col(_LOOKUP)).select(
        pl.col("firstRef").alias("uploadRef"), pl.col("firstRow").alias("rowNumber")
    )
    return wanted.unique()


def find_conflicts(
    compared: pl.DataFrame, classified: Classified, settled: pl.DataFrame
) -> pl.DataFrame:
    """The duplicates of `compared` whose content differs from their first arrival's.

    `settled` holds the settled `accepted` rows `rows_to_look_up` asked for (ARRIVAL_SCHEMA
    columns, eventId may be null); this batch's siblings are first arrivals too.
    """
    if compared.is_empty():
        return pl.DataFrame(schema=CONFLICT_SCHEMA)
    arrivals = pl.concat([_arrivals(classified.siblings), _arrivals(settled)]).select(
        pl.col("uploadRef").alias("firstRef"),
        pl.col("rowNumber").alias("firstRow"),
        pl.col(DIGEST).alias("_digest"),
        pl.col(POSITION).alias("_position"),
        pl.lit(True).alias("_found"),
    )
    joined = compared.join(
        arrivals.unique(["firstRef", "firstRow"]), on=["firstRef", "firstRow"], how="left",
        maintain_order="left",
    )  # fmt: skip
    looked_up = pl.col(_LOOKUP)
    first_digest = pl.when(looked_up).then("_digest").otherwise("firstDigest")
    missing = looked_up & pl.col("_found").is_null()
    differs = (first_digest != pl.col(DIGEST)).fill_null(False)
    joined = joined.with_columns(
        pl.when(looked_up).then("_position").otherwise("firstPosition").alias("firstPosition")
    )
    return joined.filter(missing | differs).select(list(CONFLICT_SCHEMA))


def conflict_rows(
    conflicts: pl.DataFrame, compared_values: pl.DataFrame | None
) -> list[tuple[object, ...]]:
    """What a store records of each conflict with provenance: its columns in CONFLICT_SCHEMA
    order, then this event's compared fields as JSON (from the batch's `compared` values,
    by position; null without them)."""
    recorded = conflicts.filter(
        pl.col("uploadRef").is_not_null() & pl.col("rowNumber").is_not_null()
    )
    if recorded.is_empty():
        return []
    if compared_values is None:
        return recorded.with_columns(pl.lit(None, pl.String).alias("_values")).rows()
    values = (
        compared_values.filter(pl.col(POSITION).is_in(recorded[POSITION].implode()))
        .unique(POSITION, keep="last")
        .select(
            POSITION, pl.struct(*COMPARED, "sourceFormat").struct.json_encode().alias("_values")
        )
    )
    return recorded.join(values, on=POSITION, how="left", maintain_order="left").rows()
