"""Types of the C extension consumers/_seen_search.c (see its header comment)."""

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

_Int64s = npt.NDArray[np.int64]

def rows_matching(
    keys: _Int64s, hashes: _Int64s, rows: _Int64s, directory: _Int64s, bits: int, /
) -> bytearray:
    """The rows of a sorted run whose hash is one of `keys` (any int64 buffers).

    `hashes` is the run's ascending hashes, `rows` the row holding each, and `directory`
    (2**bits + 1 values) where each top-`bits`-bits bucket of `hashes` begins. A key found
    n times yields n rows. Raises ValueError if the buffers do not fit together.
    """

def fnv1a_64(offsets: _Int64s, data: bytes | memoryview, /) -> bytearray:
    """The FNV-1a 64 hash of each string (as uint64 bits): string i is `data` from
    `offsets[i]` to `offsets[i + 1]`, Arrow's layout. Runs without the GIL. Raises
    ValueError unless the offsets ascend within `data`.
    """

def fnv1a_rows(
    rows: int, columns: Sequence[tuple[int, Any, Any, Sequence[Any], bool]], /
) -> bytearray:
    """The FNV-1a 64 hash (as uint64 bits) of each of `rows` rows, over the text its fields
    would make written `<bytes>:<text>` (a null as `-`) and joined by `|`, without building it.

    Each column is an Arrow string_view array as (slice offset, validity bitmap or None,
    views buffer, data buffers, decimal). A decimal column's texts are read as their shortest
    form: with a point, trailing zeros and then points cut; leading zeros cut; "0" if nothing
    is left, and "0" before a leading point. Runs without the GIL. Raises ValueError if a
    column is shorter than `rows` or a view points outside its data.
    """
