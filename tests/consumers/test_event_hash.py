"""The dedupe index hash is FNV-1a 64 exactly, so stored hashes stay valid across versions."""

from __future__ import annotations

import polars as pl

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
