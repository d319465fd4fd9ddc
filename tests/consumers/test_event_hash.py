"""The dedupe index hash is FNV-1a 64 exactly, so stored hashes stay valid across versions."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers._seen_search import fnv1a_64
from consumers.event_hash import event_id_hashes


def _signed(value: int) -> int:
    return value - 2**64 if value >= 2**63 else value


def test_published_fnv1a_vectors_and_sliced_input() -> None:
    # Reference values of FNV-1a 64 from its specification's test suite.
    ids = pl.Series(["", "a", "foobar", "x", "a"])
    expected = [0xCBF29CE484222325, 0xAF63DC4C8601EC8C, 0x85944171F73967E8]
    assert event_id_hashes(ids).to_list()[:3] == [_signed(v) for v in expected]
    assert event_id_hashes(ids.slice(1, 4)).to_list()[3] == _signed(0xAF63DC4C8601EC8C)


def test_multibyte_ids_hash_their_utf8_bytes() -> None:
    hashes = event_id_hashes(pl.Series(["é", "e\u0301"])).to_list()
    assert hashes[0] != hashes[1]


def _fnv1a(text: str) -> int:
    """FNV-1a 64 by its definition, one byte at a time."""
    hash_value = 0xCBF29CE484222325
    for byte in text.encode():
        hash_value = ((hash_value ^ byte) * 0x100000001B3) % 2**64
    return _signed(hash_value)


@given(ids=st.lists(st.text()), start=st.integers(0, 5))
def test_every_id_hashes_as_by_the_definition(ids: list[str], start: int) -> None:
    series = pl.Series(ids, dtype=pl.String).slice(start)
    assert event_id_hashes(series).to_list() == [_fnv1a(i) for i in ids[start:]]


def test_offsets_outside_the_data_are_refused() -> None:
    with pytest.raises(ValueError, match="ascend within the data"):
        fnv1a_64(np.array([0, 4, 2], np.int64), b"abcd")
    with pytest.raises(ValueError, match="ascend within the data"):
        fnv1a_64(np.array([0, 5], np.int64), b"abcd")
