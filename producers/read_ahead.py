"""Running an iterator one item ahead, on a thread of its own.

Why: each pass of a publish chains kinds of work. Reading, hashing and parsing the next
CSV chunk, validating it, or reading back, numbering and encoding the next spooled chunk,
is mostly done by polars, hashlib and C code that release the GIL; spooling a chunk, or
the per-message produce() loop, occupies the caller. Done one item ahead, each stage runs
while the next handles the item before (the scan chains two: parse, then validate).
Memory: one more chunk per stage.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar, cast

import meterpipe.polars_threads  # noqa: F401  (polars safe on the reading thread)

__all__ = ["read_ahead"]

T = TypeVar("T")
_END = object()


def read_ahead(items: Iterable[T]) -> Generator[T, None, None]:
    """Yield `items` in order, computing the next one while the caller handles the current.

    An exception of `items` is raised where its item would have been yielded. Close the
    generator (or exhaust it) before releasing what `items` reads from: closing waits for
    the item being computed.
    """
    source = iter(items)
    with ThreadPoolExecutor(1, thread_name_prefix="meterpipe-read-ahead") as worker:
        pending = worker.submit(next, source, _END)
        while (item := pending.result()) is not _END:
            pending = worker.submit(next, source, _END)
            yield cast(T, item)
