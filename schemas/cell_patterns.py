"""The model's fixed cell patterns matched in C (`schemas/_cell_patterns.c`).

As polars regular expressions, the UUID, decimal, currency and boolean rules were the larger
part of validating a file or a consumed batch; each is a fixed shape of ASCII classes, which
one C pass over the text checks. `schemas.validation` turns these into expressions; the
pydantic model stays the authority, and the tests hold each C matcher to Python's
`re.fullmatch` of the model's pattern.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import polars as pl
import pyarrow as pa

from schemas._cell_patterns import match_cells
from schemas.arrow_text import utf8_with_bounds
from schemas.cell_checks import BOOLEAN_PATTERN, CURRENCY_PATTERN, DECIMAL_PATTERN, UUID_PATTERN

__all__ = ["PATTERN_CODES", "pattern_code", "whole_matches"]

# The C matcher's code for each pattern of schemas.cell_checks it implements.
PATTERN_CODES: Final = {
    UUID_PATTERN: "u",
    DECIMAL_PATTERN: "d",
    CURRENCY_PATTERN: "c",
    BOOLEAN_PATTERN: "b",
}


def pattern_code(pattern: str) -> str:
    """The C matcher's code for `pattern`; ValueError for a pattern it does not implement."""
    try:
        return PATTERN_CODES[pattern]
    except KeyError:
        raise ValueError(f"no C matcher implements the pattern {pattern!r}") from None


def whole_matches(texts: pl.Series, code: str) -> pl.Series:
    """True where a text wholly matches the pattern `code` names, null where it is null."""
    utf8, bounds = utf8_with_bounds(texts)
    matched = np.frombuffer(match_cells(bounds, utf8, code), dtype=np.bool_)
    nulls = texts.is_null().to_numpy() if texts.null_count() else None
    return pl.Series(texts.name, pa.array(matched, mask=nulls), dtype=pl.Boolean)
