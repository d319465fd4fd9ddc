"""Size limits on consumed messages and on dead-letter headers, without a broker."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from consumers.batch import TOO_LARGE_KEPT_BYTES, prepare_batch
from consumers.dead_letters import HEADER_MAX_CHARS, DeadLetter, dead_letter_headers
from meterpipe.settings import PeriodSettings
from schemas.codec import SingleObjectCodec
from schemas.period_calendar import PeriodCalendar
from tests.consumers.raw_batches import raw_batch

LIMIT = 1_000_000


def _prepare(keys: list[bytes | None], values: list[bytes | None]) -> dict[int, DeadLetter]:
    raw = raw_batch([0] * len(values), list(range(len(values))), keys, values)
    calendar = PeriodCalendar.of(PeriodSettings(), {}, datetime.now(UTC))
    prepared = prepare_batch(raw, SingleObjectCodec(), calendar, LIMIT)
    assert prepared.events.height == 0
    return {letter.offset: letter for letter in prepared.dead_letters}


def test_messages_over_the_limit_are_too_large_and_keep_their_head_size_and_digest() -> None:
    huge = bytes(range(256)) * (10 * 4096)  # 10 MiB
    letters = _prepare(
        [b"k", b"k" * 10, b"x" * 2000, None],
        [huge, b"v" * (LIMIT - 10), b"v" * (LIMIT - 1999), b"not avro"],
    )
    assert {offset: letter.reason for offset, letter in letters.items()} == {
        0: "too_large", 1: "not_avro", 2: "too_large", 3: "not_avro",
    }  # fmt: skip
    first = letters[0]
    assert first.value == huge[:TOO_LARGE_KEPT_BYTES]
    assert (first.original_size, first.original_sha256) == (
        len(huge), hashlib.sha256(huge).hexdigest(),
    )  # fmt: skip
    assert letters[2].key == "x" * HEADER_MAX_CHARS  # a key counts, and is cut in the letter


def test_dead_letter_header_texts_are_capped() -> None:
    letter = DeadLetter(
        key=None, value=b"", reason="invalid_decimal", message="m" * 10_000, partition=1,
        offset=2, upload_ref="u" * 5000, row_number=3, original_size=7,
    )  # fmt: skip
    headers = dict(dead_letter_headers(letter, "usage"))
    assert all(len(str(value)) <= HEADER_MAX_CHARS for value in headers.values())
    assert headers["meterpipe.row"] == "3"
    assert headers["meterpipe.original.size"] == "7"
    assert "meterpipe.original.sha256" not in headers


def test_a_batch_knows_where_each_partition_starts_and_ends() -> None:
    raw = raw_batch([1, 0, 1, 0], [5, 3, 6, 4], [None] * 4, [b""] * 4)
    assert (raw.first_offsets(), raw.next_offsets()) == ({0: 3, 1: 5}, {0: 5, 1: 7})
