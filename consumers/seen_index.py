"""An in-memory index from eventId hash to the store row that holds that eventId.

Why in memory: a B-tree index on the hash costs one random page write per new event,
and with tens of millions of eventIds each batch dirties most of the index, so
throughput falls as the store grows. Here the store only appends rows; this index
answers "which rows might hold these ids?" with binary searches over sorted numpy
arrays, and the store confirms each candidate by row id against the full eventId, so a
hash collision or a pruned row can never turn a new event into a duplicate.

Layout (size-tiered runs): each committed batch adds a sorted run; a run's level is
log8 of its size, and whenever the newest FANOUT runs share a level they are merged into
one run (a level up). An entry is copied about log8(entries / batch) times (3 to 4 times
for 50M eventIds in 50k batches), a lookup searches at most FANOUT - 1 runs per level, and
a batch never triggers the merge of runs much larger than itself. Within a run, a directory
of top-bits buckets narrows each binary search to a handful of hashes; the searches run in C
(`consumers/_seen_search.c`), one key at a time. Memory is 17 to 18 bytes per retained
eventId, plus the run being merged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from consumers._seen_search import rows_matching

__all__ = ["SeenIndex"]

FANOUT = 8
SMALLEST_LEVEL_SIZE = 4096
# A run of n hashes gets a directory of about n / 4 to n / 8 buckets (see _Sorted).
DIRECTORY_SHIFT = 3

Int64s = npt.NDArray[np.int64]


def _buckets(hashes: Int64s, bits: int) -> Int64s:
    """The top `bits` bits of each hash, in the hashes' own (signed) order."""
    if bits == 0:
        return np.zeros(len(hashes), np.int64)
    unsigned = hashes.view(np.uint64) ^ np.uint64(1 << 63)  # signed order as unsigned
    return (unsigned >> np.uint64(64 - bits)).astype(np.int64)


@dataclass(frozen=True)
class _Sorted:
    """Hashes in ascending order and, aligned with them, the rows holding them.

    `directory[b]` is where the hashes whose top `bits` bits are b begin (a handful of
    hashes each): a lookup binary-searches only that stretch, not the whole run, whose
    upper levels would be a chain of cache misses over tens of millions of hashes.
    """

    hashes: Int64s
    rows: Int64s
    directory: Int64s
    bits: int

    @classmethod
    def of(cls, hashes: Int64s, rows: Int64s) -> _Sorted:
        # Stable sort finds already-sorted stretches, so merging sorted runs is near linear.
        order = np.argsort(hashes, kind="stable")
        ordered = hashes[order]
        bits = max(len(ordered).bit_length() - DIRECTORY_SHIFT, 0)
        directory = np.zeros(2**bits + 1, dtype=np.int64)
        np.cumsum(np.bincount(_buckets(ordered, bits), minlength=2**bits), out=directory[1:])
        return cls(ordered, rows[order], directory, bits)

    @property
    def level(self) -> int:
        """log8 of the size: runs of one level are within a factor 8 of each other."""
        return int(math.log(max(len(self.hashes), 1) / SMALLEST_LEVEL_SIZE + 1, FANOUT))

    @classmethod
    def merged(cls, runs: list[_Sorted], first_row: int) -> _Sorted:
        """One run, without the rows that were pruned."""
        rows = np.concatenate([run.rows for run in runs])
        keep = rows >= first_row
        hashes = np.concatenate([run.hashes for run in runs])[keep]
        return cls.of(hashes, rows[keep])

    def rows_matching(self, hashes: Int64s) -> Int64s:
        """Every row whose hash is one of `hashes` (duplicates in the index included)."""
        if len(self.hashes) == 0:  # every row of it pruned
            return np.empty(0, np.int64)
        found = rows_matching(hashes, self.hashes, self.rows, self.directory, self.bits)
        return np.frombuffer(found, dtype=np.int64)


class SeenIndex:
    """Candidate rows for eventId hashes; `last_row` is the newest row folded in."""

    def __init__(self) -> None:
        self._runs: list[_Sorted] = []
        self._first_row = 0
        self.last_row = 0

    def __len__(self) -> int:
        return sum(len(run.hashes) for run in self._runs)

    def add(self, hashes: Int64s, rows: Int64s) -> None:
        """Fold in newly committed rows (hashes aligned with their row ids)."""
        if len(hashes) == 0:
            return
        self._runs.append(_Sorted.of(hashes.astype(np.int64), rows.astype(np.int64)))
        self.last_row = max(self.last_row, int(rows.max()))
        while len(self._runs) >= FANOUT and all(
            run.level == self._runs[-1].level for run in self._runs[-FANOUT:]
        ):
            self._runs[-FANOUT:] = [_Sorted.merged(self._runs[-FANOUT:], self._first_row)]

    def forget_rows_below(self, first_row: int) -> None:
        """Rows below `first_row` were pruned: never answer them, drop them when merging."""
        self._first_row = max(self._first_row, first_row)

    def candidate_rows(self, hashes: Int64s) -> Int64s:
        """Row ids that may hold one of `hashes`; the caller confirms the full eventId."""
        # Sorted keys visit each run's directory and hashes in address order: the C
        # search's prefetches then run ahead along memory instead of jumping about.
        keys = np.sort(hashes)
        found = [run.rows_matching(keys) for run in self._runs]
        rows = np.concatenate(found) if found else np.empty(0, np.int64)
        return np.unique(rows[rows >= self._first_row])
