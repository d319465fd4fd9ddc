"""Types of the C extension schemas/_cell_patterns.c (see its header comment)."""

import numpy as np
import numpy.typing as npt

def match_cells(bounds: npt.NDArray[np.int64], data: bytes | memoryview, code: str, /) -> bytearray:
    """Whether each text `data[bounds[i]:bounds[i + 1]]` wholly matches pattern `code`.

    `code` is one of 'u' (UUID), 'd' (decimal), 'c' (three letters), 'b' (true or false in
    any case). Returns a byte per text, 1 for a match and 0 otherwise. Raises ValueError for
    an unknown code, or unless `bounds` are n + 1 int64 offsets rising within `data`. The
    loop releases the GIL.
    """
