"""What an event says, reduced to one 64-bit digest: how a conflicting duplicate is noticed.

A duplicate (its eventId already counted) never counts, but when it says something else
than the eventId's first arrival (another quantity, unit, account, instant, price...) it
is a *conflict*, reported with its upload. Comparing digests needs no text of the first
arrival: the store keeps each first arrival's digest with its dedupe state.

The compared fields are normalised first, so that the same content written differently
is the same: decimals without leading or trailing zeros (12.5 and 12.500), eventDate as
its UTC instant with its fraction of a second, billable as true/false. Each field is
written as `<bytes>:<text>` (a null as `-`, distinct from an empty text) and the fields
joined by `|`: no two different contents give the same string. The string is hashed with
the project's stable FNV-1a (`consumers.event_hash.row_hashes`, which hashes it without
building it), never polars' own hash, which may change between versions while digests are
kept for the whole dedupe window.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from consumers.event_hash import row_hashes
from schemas.periods import INSTANT
from schemas.validation import utc_instant

__all__ = [
    "COMPARED",
    "DIGEST",
    "FIRST_ARRIVAL",
    "POSITION",
    "differences",
    "normalised",
    "with_digests",
]

DIGEST = "digest"
POSITION = "kafkaPosition"  # where the event is in the topic (`consumers.batch.kafka_position`)
FIRST_ARRIVAL = (DIGEST, POSITION)  # what the store keeps of an eventId's first arrival
# What a re-send may not change; Solvimon's meter value is pricingUnit (its meter) and quantity.
COMPARED = (
    "accountId", "pricingUnit", "customUnit", "quantity", "unitPrice", "currency",
    "description", "eventDate", "billable", "subscriptionRef", "properties",
)  # fmt: skip
_DECIMALS = ("quantity", "unitPrice")
_FRACTION = r"T\d\d:\d\d:\d\d\.(\d+)"


def _decimal(text: pl.Expr) -> pl.Expr:
    """A plain decimal without leading zeros, trailing fraction zeros or a bare point."""
    cut = pl.when(text.str.contains(".", literal=True)).then(
        text.str.strip_chars_end("0").str.strip_chars_end(".")
    )
    whole = cut.otherwise(text).str.strip_chars_start("0")
    return (
        pl.when(whole == "")
        .then(pl.lit("0"))
        .when(whole.str.starts_with("."))
        .then(pl.concat_str(pl.lit("0"), whole))
        .otherwise(whole)
    )


def _instant(event_date: pl.Expr, instant: pl.Expr) -> pl.Expr:
    """The UTC instant in epoch seconds, then the fraction (its trailing zeros cut)."""
    seconds = instant.dt.epoch("s").cast(pl.String)
    fraction = event_date.str.extract(_FRACTION, 1).str.strip_chars_end("0").fill_null("")
    return pl.concat_str(seconds, pl.lit("."), fraction)


def _normalised(name: str, instant: pl.Expr, decimals: bool) -> pl.Expr:
    column = pl.col(name)
    if name in _DECIMALS and decimals:
        return _decimal(column).alias(name)
    if name == "eventDate":
        return _instant(column, instant).alias(name)
    return column.cast(pl.String).alias(name)


def normalised(frame: pl.DataFrame, *, decimals: bool = True) -> pl.DataFrame:
    """The compared fields of valid events, each as the text the digest reads.

    Events already dated (column `INSTANT`, `schemas.periods`) are not dated again.
    `decimals` False leaves the decimals as given, for a reader that shortens them itself.
    """
    dated = INSTANT in frame.columns
    instant = pl.col(INSTANT) if dated else utc_instant(pl.col("eventDate"))
    return frame.select(_normalised(name, instant, decimals) for name in COMPARED)


def with_digests(events: pl.DataFrame) -> pl.DataFrame:
    """`events` (valid: decoded and validated) with the column DIGEST.

    The C hash shortens the decimals as `_decimal` does (tests compare the two).
    """
    fields = normalised(events, decimals=False)
    return events.with_columns(row_hashes(fields, DIGEST, decimals=_DECIMALS))


def differences(first: dict[str, Any] | None, this: dict[str, Any]) -> list[dict[str, Any]]:
    """Each compared field whose normalised value differs, with both values as given.

    `first` None: the first arrival sent nothing for this value (a meter it left empty),
    so every field of `this` that is set differs from nothing.
    """
    if first is None:
        return [
            {"field": name, "first": None, "this": this.get(name)}
            for name in ("pricingUnit", "quantity")
            if this.get(name) is not None
        ]
    both = pl.DataFrame(
        [{name: row.get(name) for name in COMPARED} for row in (first, this)],
        schema=_SCHEMA,
        orient="row",
    )
    was, now = normalised(both).rows()
    return [
        {"field": name, "first": first.get(name), "this": this.get(name)}
        for name, before, after in zip(COMPARED, was, now, strict=True)
        if before != after
    ]


_SCHEMA = {name: pl.Boolean if name == "billable" else pl.String for name in COMPARED}
