"""A string column as one UTF-8 buffer and its offsets: how C code is handed text.

The C extensions read text by offsets into one buffer, the oldest Arrow string layout.
polars keeps strings as views; asking for that layout copies them once (about 2 ms per
100,000 short strings), which is far cheaper than a Python object per string.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

__all__ = ["utf8_with_bounds"]


def utf8_with_bounds(series: pl.Series) -> tuple[memoryview, npt.NDArray[np.int64]]:
    """The strings as one UTF-8 buffer (not copied again) and n + 1 offsets into it from 0.

    A null reads as an empty string: callers that care look at `series.is_null()`.
    """
    strings = series.to_arrow(compat_level=pl.CompatLevel.oldest()).cast(pa.large_string())
    if isinstance(strings, pa.ChunkedArray):
        strings = strings.combine_chunks()
    _, offsets, text = strings.buffers()
    bounds = np.frombuffer(offsets, dtype=np.int64)[
        strings.offset : strings.offset + len(strings) + 1
    ]
    first, last = int(bounds[0]), int(bounds[-1])
    utf8 = memoryview(text)[first:last] if text is not None else memoryview(b"")
    return utf8, bounds - first
