"""How `up` waits for its old consumer before restarting a dead broker (meterpipe.pipeline).

The old member must not join the new broker's group (Tansu's group-leader bug), so `up`
waits until it has begun to close; but librdkafka's close can wait minutes on the dead
broker, so a closing member gets a grace period and is then left to finish alone. Real
threads stand in for the consumer's: what is tested is the waiting policy, with deadlines.
"""

from __future__ import annotations

import threading
import time

import pytest

from meterpipe import pipeline
from meterpipe.pipeline import _ConsumerThread, _wait_until_leaving

GRACE_S = 0.5


@pytest.fixture(autouse=True)
def short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "LEAVE_GRACE_S", GRACE_S)


def _member(closes_after_s: float | None, release: threading.Event) -> _ConsumerThread:
    """A thread that begins to close after `closes_after_s` (never if None), then blocks
    until `release`, like a close() stuck on a dead broker."""

    def run() -> None:
        if closes_after_s is None:
            release.wait(30)
            return
        time.sleep(closes_after_s)
        closing.set()
        release.wait(30)

    closing = threading.Event()
    thread = _ConsumerThread(closing, target=run, daemon=True)
    thread.start()
    return thread


def test_a_member_stuck_in_close_is_left_after_the_grace_period() -> None:
    release = threading.Event()
    member = _member(closes_after_s=0.0, release=release)
    try:
        started = time.monotonic()
        _wait_until_leaving(member)
        waited = time.monotonic() - started
        assert member.is_alive()  # still "closing": left to finish alone
        assert GRACE_S <= waited < GRACE_S + 10
    finally:
        release.set()


def test_a_member_not_yet_closing_is_waited_for_beyond_the_grace_period() -> None:
    release = threading.Event()
    started = time.monotonic()  # before the member's clock starts: it closes 3 graces later
    member = _member(closes_after_s=3 * GRACE_S, release=release)
    try:
        _wait_until_leaving(member)
        assert member.closing.is_set()  # never went on while it could still join a group
        assert time.monotonic() - started >= 3 * GRACE_S
    finally:
        release.set()


def test_a_member_that_ends_is_not_waited_for_any_longer() -> None:
    release = threading.Event()
    member = _member(closes_after_s=None, release=release)
    release.set()
    started = time.monotonic()
    _wait_until_leaving(member)
    assert not member.is_alive()
    assert not member.closing.is_set()
    assert time.monotonic() - started < 10
