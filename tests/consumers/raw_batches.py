"""Consumed batches built from lists, as the group member hands them over: positions as
arrays, keys and values as Arrow large binary arrays."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from consumers.batch import RawBatch


def raw_batch(
    partitions: Sequence[int],
    offsets: Sequence[int],
    keys: Sequence[bytes | None],
    values: Sequence[bytes | None],
) -> RawBatch:
    """A batch of these messages, none of them replayed."""
    return RawBatch(
        np.array(partitions, dtype=np.int32),
        np.array(offsets, dtype=np.int64),
        pa.array(keys, type=pa.large_binary()),
        pa.array(values, type=pa.large_binary()),
    )
