"""The dedupe index hash is FNV-1a 64 exactly, so stored hashes stay valid across versions."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers._seen_search import fnv1a_64, fnv1a_rows
from consumers.event_hash import event_id_hashes, row_hashes
from tests.consumers.fnv import fnv1a, signed


def test_published_fnv1a_vectors_and_sliced_input() -> None:
    # Reference values of FNV-1a 64 from its specification's test suite.
    ids = pl.Series(["", "a", "foobar", "x", "a"])
    expected = [0xCBF29CE484222325, 0xAF63DC4C8601EC8C, 0x85944171F73967E8]
    assert event_id_hashes(ids).to_list()[:3] == [signed(v) for v in expected]
    assert event_id_hashes(ids.slice(1, 4)).to_list()[3] == signed(0xAF63DC4C8601EC8C)


def test_multibyte_ids_hash_their_utf8_bytes() -> None:
    hashes = event_id_hashes(pl.Series(["é", "e\u0301"])).to_list()
    assert hashes[0] != hashes[1]


@given(ids=st.lists(st.text()), start=st.integers(0, 5))
def test_every_id_hashes_as_by_the_definition(ids: list[str], start: int) -> None:
    series = pl.Series(ids, dtype=pl.String).slice(start)
    assert event_id_hashes(series).to_list() == [fnv1a(i) for i in ids[start:]]


def test_offsets_outside_the_data_are_refused() -> None:
    with pytest.raises(ValueError, match="ascend within the data"):
        fnv1a_64(np.array([0, 4, 2], np.int64), b"abcd")
    with pytest.raises(ValueError, match="ascend within the data"):
        fnv1a_64(np.array([0, 5], np.int64), b"abcd")


def _row_text(row: tuple[str | None, ...]) -> str:
    """A row's text by the definition: `<bytes>:<text>` per field (a null `-`), joined by `|`."""
    return "|".join("-" if cell is None else f"{len(cell.encode())}:{cell}" for cell in row)


# Short texts sit inside their string view, those over 12 bytes in a data buffer.
_CELLS = st.one_of(st.none(), st.text(max_size=4), st.text(min_size=11, max_size=40))


@given(
    rows=st.lists(st.tuples(_CELLS, _CELLS, _CELLS), max_size=30),
    start=st.integers(0, 3),
)
def test_every_row_hashes_as_its_text_by_the_definition(
    rows: list[tuple[str | None, ...]], start: int
) -> None:
    frame = pl.DataFrame(rows, schema=["a", "b", "c"], orient="row").slice(start)
    expected = [fnv1a(_row_text(row)) for row in rows[start:]]
    assert row_hashes(frame, "digest").to_list() == expected


def test_rows_of_texts_of_every_layout_hash_as_their_text() -> None:
    # Chunks appended, a boolean column, whole-null and empty columns, a long multibyte text.
    first = pl.DataFrame({"flag": [True, None], "text": ["é" * 20, ""], "none": [None, None]})
    frame = pl.concat([first, first.reverse()], rechunk=False)
    texts = [
        ("true", "é" * 20, None), (None, "", None), (None, "", None), ("true", "é" * 20, None),
    ]  # fmt: skip
    assert row_hashes(frame, "digest").to_list() == [fnv1a(_row_text(t)) for t in texts]
    assert row_hashes(frame.clear(), "digest").to_list() == []
    assert fnv1a(_row_text(("true", "é" * 20, None))) == fnv1a(f"4:true|40:{'é' * 20}|-")


def test_columns_that_do_not_fit_their_rows_are_refused() -> None:
    views = pl.Series(["a" * 20, "b"]).to_arrow(compat_level=pl.CompatLevel.newest())
    validity, buffer, *data = views.buffers()
    with pytest.raises(ValueError, match="shorter than the rows"):
        fnv1a_rows(3, [(0, validity, buffer, data, False)])
    with pytest.raises(ValueError, match="outside its data"):
        fnv1a_rows(2, [(0, validity, buffer, [], False)])  # the long text's buffer is missing
