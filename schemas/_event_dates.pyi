"""Types of the C extension schemas/_event_dates.c (see its header comment)."""

import numpy as np
import numpy.typing as npt

def judge_event_dates(
    bounds: npt.NDArray[np.int64], data: bytes | memoryview, /
) -> tuple[bytearray, bytearray]:
    """Judge each text `data[bounds[i]:bounds[i + 1]]` as an eventDate.

    Returns a state byte per text (0 a valid eventDate, 2 not one) and, per text, its UTC
    instant as int64 microseconds since 1970 to the second (0 where not valid). Raises
    ValueError unless `bounds` are n + 1 int64 offsets rising within `data`. The loop
    releases the GIL.
    """
