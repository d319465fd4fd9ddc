"""Reading columns decoded with an earlier UsageEvent schema as the current one.

An event written with an earlier version is decoded in C with its writer's schema, like a
current one (same checks, same speed), and its columns are then matched to the reader's
fields by Avro's schema-resolution rules, for the types the contract uses (string, boolean,
long and their unions with null; see `schemas.avro_columns`):

- a field both schemas have keeps its column: the type is the same, or the writer's ``T``
  is read as the reader's ``["null", T]``;
- the writer's ``["null", T]`` read as ``T``: a record where it is null cannot be read;
- a field only the reader has takes its default; one only the writer has is skipped.

Anything else (another record name, a changed type, a new field without a default) is not
backward compatible: `plan_resolution` raises SchemaError when the released versions are
loaded, never in the middle of a stream. fastavro's ``schemaless_reader(body, writer,
reader)`` is the reference these rules are tested against.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from meterpipe.errors import SchemaError
from schemas.avro_columns import field_kind, polars_schema

__all__ = ["Resolution", "plan_resolution", "resolve_columns"]


@dataclass(frozen=True)
class Resolution:
    """How columns decoded with a writer's schema become the reader's columns: one
    expression per reader field, and the writer's columns whose nulls the reader cannot take."""

    columns: tuple[pl.Expr, ...]
    non_null: tuple[str, ...]


def plan_resolution(writer: Mapping[str, Any], reader: Mapping[str, Any]) -> Resolution:
    """Work out how records written with `writer` are read as `reader` (both parsed by
    fastavro); SchemaError if Avro's rules cannot resolve them."""
    if writer["name"] != reader["name"] and writer["name"] not in reader.get("aliases", ()):
        raise SchemaError(f"record {writer['name']} cannot be read as {reader['name']}")
    written = {field["name"]: field for field in writer["fields"]}
    dtypes = polars_schema(reader)
    columns, non_null = [], []
    for field in reader["fields"]:
        name = field["name"]
        names = (name, *field.get("aliases", ()))
        source = next((written[n] for n in names if n in written), None)
        if source is None:
            columns.append(_default(field, dtypes[name]))
            continue
        kind, nullable = field_kind(field)
        source_kind, source_nullable = field_kind(source)
        if source_kind != kind:
            raise SchemaError(f"field {name!r}: a {source_kind} cannot be read as a {kind}")
        columns.append(pl.col(source["name"]).alias(name))
        if source_nullable and not nullable:
            non_null.append(source["name"])
    return Resolution(tuple(columns), tuple(non_null))


def _default(field: Mapping[str, Any], dtype: pl.DataType) -> pl.Expr:
    """The reader field's default as a column, for records written without the field."""
    if "default" not in field:
        raise SchemaError(f"field {field['name']!r} is new and has no default")
    # A repeat, not a literal: the column is as long as the frame even if no other is.
    return pl.repeat(field["default"], pl.len(), dtype=dtype).alias(field["name"])


def resolve_columns(
    frame: pl.DataFrame, resolution: Resolution
) -> tuple[pl.DataFrame, npt.NDArray[np.bool_]]:
    """The rows of `frame` (decoded with the writer's schema) as the reader's columns, and
    which rows of `frame` could not be read (left out): a null the reader cannot take."""
    nulls = (pl.col(name).is_null() for name in resolution.non_null)
    unreadable = frame.select(pl.any_horizontal(pl.repeat(False, pl.len()), *nulls)).to_series()
    return frame.filter(~unreadable).select(*resolution.columns), unreadable.to_numpy()
