"""Array literals read back by a real PostgreSQL server exactly as the frame held them."""

from __future__ import annotations

import polars as pl
import psycopg
import pytest

from consumers.store.pg_arrays import array_literals

AWKWARD_TEXTS = [
    "plain", None, "NULL", "null", 'quote " inside', "back\\slash", "\\\\", '\\"', "a,b",
    "{braces}", " padded ", "", "$1 $0", "tab\tnew\nline\r", "é ü 中文 🙂", "'single'",
]  # fmt: skip


def test_every_text_and_integer_reads_back_unchanged(postgres_url: str) -> None:
    frame = pl.DataFrame({
        "text": AWKWARD_TEXTS,
        "big": [0, None, -1, 2**63 - 1, -(2**63), *range(11)],
        "small": pl.Series([None, *range(15)], dtype=pl.Int32),
    })  # fmt: skip
    with psycopg.connect(postgres_url) as connection:
        rows = connection.execute(
            "SELECT * FROM unnest(%s::text[], %s::bigint[], %s::int[])",
            array_literals(frame),
        ).fetchall()
    assert rows == list(frame.iter_rows())


def test_an_empty_frame_gives_empty_arrays(postgres_url: str) -> None:
    frame = pl.DataFrame(schema={"text": pl.String, "number": pl.Int64})
    with psycopg.connect(postgres_url) as connection:
        found = connection.execute(
            "SELECT cardinality(%s::text[]), cardinality(%s::bigint[])", array_literals(frame)
        ).fetchone()
    assert found == (0, 0)


def test_a_column_of_another_type_is_refused() -> None:
    with pytest.raises(TypeError, match="'price'"):
        array_literals(pl.DataFrame({"price": [1.5]}))
