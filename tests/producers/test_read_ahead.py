"""read_ahead: the next item is computed while the caller holds the current one, in order,
with the source's errors where its items would have been."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pytest

from producers.read_ahead import read_ahead

DEADLINE_S = 30.0


def test_items_come_in_order_and_the_next_is_ready_meanwhile() -> None:
    produced: list[int] = []
    second_ready = threading.Event()

    def source() -> Iterator[int]:
        for n in range(5):
            produced.append(n)
            if n == 1:
                second_ready.set()
            yield n

    items = read_ahead(source())
    assert next(items) == 0
    # Item 1 is computed without being asked for, while the caller still holds item 0.
    assert second_ready.wait(DEADLINE_S)
    assert list(items) == [1, 2, 3, 4]
    assert produced == [0, 1, 2, 3, 4]


def test_an_error_of_the_source_comes_where_its_item_would_have() -> None:
    def source() -> Iterator[int]:
        yield 0
        yield 1
        raise ValueError("row 3 is bad")

    items = read_ahead(source())
    assert [next(items), next(items)] == [0, 1]
    with pytest.raises(ValueError, match="row 3 is bad"):
        next(items)


def test_closing_waits_for_the_item_in_progress_and_reads_no_further() -> None:
    started, release = threading.Event(), threading.Event()
    produced: list[int] = []

    def source() -> Iterator[int]:
        yield 0
        started.set()
        release.wait(DEADLINE_S)  # item 1 takes a while
        produced.append(1)
        yield 1
        produced.append(2)
        yield 2

    with contextlib.closing(read_ahead(source())) as items:
        assert next(items) == 0
        assert started.wait(DEADLINE_S)
        threading.Timer(0.2, release.set).start()
    # Closed: item 1 was finished before close returned (the source is safe to release),
    # and nothing after it was computed.
    assert produced == [1]
