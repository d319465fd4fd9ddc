"""eventDates judged and turned into UTC instants in one pass (`schemas/_event_dates.c`).

Both the check (is this an eventDate the model accepts?) and the instant (which UTC day is
it totalled under? is its billing period closed?) read the same fixed-width text. As polars
expressions they took a pattern match and three parses; the C pass reads each text once.
`schemas.validation` turns these into expressions; the pydantic model stays the authority,
and the differential tests hold the three to one rule.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

from schemas._event_dates import judge_event_dates
from schemas.arrow_text import utf8_with_bounds

__all__ = ["breaks_event_dates", "utc_instants"]

_VALID = 0


def _judged(texts: pl.Series) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    """Per text: whether it is a valid eventDate (never for null), and its instant in µs."""
    utf8, bounds = utf8_with_bounds(texts)
    states, instants = judge_event_dates(bounds, utf8)
    valid = np.frombuffer(states, dtype=np.uint8) == _VALID
    return valid, np.frombuffer(instants, dtype=np.int64)


def breaks_event_dates(texts: pl.Series, *, required: bool) -> pl.Series:
    """True where a text is not a valid eventDate; a null breaks the rule only if `required`."""
    valid, _ = _judged(texts)
    empty = texts.is_null().to_numpy()
    return pl.Series(texts.name, np.where(empty, required, ~valid), dtype=pl.Boolean)


def utc_instants(texts: pl.Series) -> pl.Series:
    """The UTC instant, to the second, of each valid eventDate (null for any other text)."""
    valid, instants = _judged(texts)
    array = pa.array(instants, type=pa.timestamp("us"), mask=~valid)
    return pl.Series(texts.name, array, dtype=pl.Datetime("us"))
