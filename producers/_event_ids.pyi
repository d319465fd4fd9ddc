"""Types of the C extension producers/_event_ids.c (see its header comment)."""

import numpy as np
import numpy.typing as npt

def uuid5_texts(prefix: bytes, rows: npt.NDArray[np.int64], /) -> list[str]:
    """For each row (any int64 buffer), the text of the UUIDv5 whose name bytes are
    `prefix` followed by the row's decimal digits: `prefix` is the namespace's 16 bytes and
    the name's common start. Raises ValueError if `rows` is not a whole number of int64s.
    """
