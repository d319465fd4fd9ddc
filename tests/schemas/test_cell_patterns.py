"""Tests of schemas.cell_patterns: the C matchers of the model's fixed patterns.

Each C matcher must say exactly what Python's `re.fullmatch` of the model's own pattern
says, for any text: near-misses of every shape, other scripts' digits and letters, line
breaks. Whole rows are held to the pydantic model in test_validation.py and test_fuzz_rows.py.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas._cell_patterns import match_cells
from schemas.cell_checks import DATETIME_PATTERN, DECIMAL_PATTERN
from schemas.cell_patterns import PATTERN_CODES, pattern_code, whole_matches

# Characters every pattern uses, their neighbours in ASCII, and look-alikes outside it:
# Arabic-Indic and full-width digits, letters whose upper or lower case is ASCII (the
# Kelvin sign lowers to "k", the dotless ı uppers to "I"), and line breaks.
ALPHABET = "0123456789abcdefgABCDEFGxyzXYZtrueTRUEfalsFALS-._ /:@`[{\n\r\t٣０ıKé€"
TEXTS = st.text(ALPHABET, max_size=40)


def _near_misses(pattern: str) -> st.SearchStrategy[str]:
    """Matching texts, then one character changed, dropped or added at random."""

    def mutate(text: str, at: int, char: str, how: int) -> str:
        at = at % (len(text) + 1)
        return [text[:at] + char + text[at + 1 :], text[:at] + text[at + 1 :],
                text[:at] + char + text[at:]][how]  # fmt: skip

    matching = st.from_regex(pattern, fullmatch=True)
    changed = st.builds(mutate, matching, st.integers(0, 40), st.sampled_from(ALPHABET),
                        st.integers(0, 2))  # fmt: skip
    return st.one_of(matching, changed)


def _judged_by_c(texts: Sequence[str | None], pattern: str) -> list[bool | None]:
    return whole_matches(pl.Series("cell", texts, dtype=pl.String), pattern_code(pattern)).to_list()


@pytest.mark.parametrize("pattern", sorted(PATTERN_CODES), ids=sorted(PATTERN_CODES.values()))
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_each_c_matcher_agrees_with_the_models_pattern(pattern: str, data: st.DataObject) -> None:
    texts = data.draw(st.lists(st.one_of(TEXTS, _near_misses(pattern)), max_size=30))
    expected = [re.fullmatch(pattern, text) is not None for text in texts]
    assert _judged_by_c(texts, pattern) == expected


# The edges of each shape: longest and one too long, every hyphen, both cases.
EDGES = [
    "1" * 20, "1" * 21, "1." + "2" * 12, "1." + "2" * 13, "1" * 20 + "." + "2" * 12, ".5", "5.",
    "0", "1.2.3", "+1", "-1", "1e3", " 1", "1 ", "1\n",
    "123e4567-e89b-12d3-a456-426614174000", "123E4567-E89B-12D3-A456-42661417400F",
    "123e4567-e89b-12d3-a456-42661417400g", "123e4567e89b-12d3-a456-426614174000-",
    "123e4567-e89b-12d3-a456-4266141740000", "123e4567-e89b-12d3-a456-42661417400",
    "{123e4567-e89b-12d3-a456-426614174000}", "usd", "EUR", "Eu1", "EURO", "EU", "E€",
    "true", "TRUE", "tRuE", "false", "FALSE", "fAlSe", "truee", "fals", "yes", "1", "",
]  # fmt: skip


@pytest.mark.parametrize("pattern", sorted(PATTERN_CODES), ids=sorted(PATTERN_CODES.values()))
def test_each_c_matcher_agrees_at_the_edges_of_its_shape(pattern: str) -> None:
    expected = [re.fullmatch(pattern, text) is not None for text in EDGES]
    assert any(expected)
    assert _judged_by_c(EDGES, pattern) == expected


def test_nulls_stay_null_and_a_slice_is_judged_row_for_row() -> None:
    column = pl.Series("quantity", ["x", "12.5", None, "", "1.", "007", "y"])[1:-1]
    assert whole_matches(column, pattern_code(DECIMAL_PATTERN)).to_list() == [
        True, None, False, False, True,
    ]  # fmt: skip


def test_a_pattern_without_a_c_matcher_is_refused() -> None:
    with pytest.raises(ValueError, match="no C matcher"):
        pattern_code(DATETIME_PATTERN)


@pytest.mark.parametrize(
    ("bounds", "code", "problem"),
    [
        ([0, 5, 3], "u", "bounds"),
        ([0, 25], "u", "bounds"),
        ([-1, 4], "d", "bounds"),
        ([], "c", "bounds"),
        ([0, 4], "z", "code"),
    ],
    ids=["falling", "past the data", "negative", "not even one", "unknown code"],
)
def test_the_c_pass_refuses_what_it_cannot_read(bounds: list[int], code: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        match_cells(np.array(bounds, dtype=np.int64), b"true", code)
