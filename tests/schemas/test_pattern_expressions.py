"""The frame validator's pattern expressions (polars regular expressions) against the model.

Each must say exactly what Python's `re.fullmatch` of the model's own pattern says, for any
text: near-misses of every shape, other scripts' digits and letters, line breaks. Whole rows
are held to the pydantic model in test_validation.py and test_fuzz_rows.py.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.cell_checks import (
    BOOLEAN_PATTERN,
    CURRENCY_PATTERN,
    DECIMAL_PATTERN,
    UUID_PATTERN,
)
from schemas.validation import whole_match

PATTERNS = {"uuid": UUID_PATTERN, "decimal": DECIMAL_PATTERN, "currency": CURRENCY_PATTERN,
            "boolean": BOOLEAN_PATTERN}  # fmt: skip

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


def _judged(texts: Sequence[str | None], pattern: str) -> list[bool | None]:
    frame = pl.DataFrame({"cell": texts}, schema={"cell": pl.String})
    return frame.select(whole_match("cell", pattern))["cell"].to_list()


@pytest.mark.parametrize("pattern", list(PATTERNS.values()), ids=list(PATTERNS))
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_each_expression_agrees_with_the_models_pattern(pattern: str, data: st.DataObject) -> None:
    texts = data.draw(st.lists(st.one_of(TEXTS, _near_misses(pattern)), max_size=30))
    expected = [re.fullmatch(pattern, text) is not None for text in texts]
    assert _judged(texts, pattern) == expected


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


@pytest.mark.parametrize("pattern", list(PATTERNS.values()), ids=list(PATTERNS))
def test_each_expression_agrees_at_the_edges_of_its_shape(pattern: str) -> None:
    expected = [re.fullmatch(pattern, text) is not None for text in EDGES]
    assert any(expected)
    assert _judged(EDGES, pattern) == expected


def test_a_null_cell_stays_null() -> None:
    column = pl.Series("cell", ["x", "12.5", None, "", "1.", "007", "y"])[1:-1]
    assert _judged(column.to_list(), DECIMAL_PATTERN) == [True, None, False, False, True]
