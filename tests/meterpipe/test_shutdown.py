"""The shutdown bound itself, in real processes: abandoned threads, a stuck main thread."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

# A process that installs the handlers, prints "ready", then runs `body` with `shutdown`.
SCRIPT = """
import threading, time
from meterpipe.shutdown import stop_on_signals
with stop_on_signals(1.0) as shutdown:
    print("ready", flush=True)
{body}
"""
NEVER_ENDING_THREAD = """
    busy = threading.Thread(target=threading.Event().wait, name="busy", daemon=True)
    busy.start()
    shutdown.stop.wait()
    shutdown.join(busy)
"""
STUCK_MAIN_THREAD = """
    while True:
        time.sleep(0.1)
"""


def _stop_after_signals(body: str, signals: int) -> tuple[int, float, str]:
    """Exit code, seconds from the first signal to exit, and stderr."""
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT.format(body=body)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    sent = time.monotonic()
    for _ in range(signals):
        process.send_signal(signal.SIGTERM)
        time.sleep(0.2)
    try:
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    return process.returncode, time.monotonic() - sent, stderr


def test_a_thread_busy_past_the_timeout_is_abandoned_and_the_exit_is_clean() -> None:
    code, seconds, stderr = _stop_after_signals(NEVER_ENDING_THREAD, signals=1)
    assert code == 0, stderr
    assert 1.0 <= seconds < 10
    assert "busy thread still busy" in stderr


@pytest.mark.parametrize(("signals", "at_least_s"), [(1, 4.0), (2, 0.0)], ids=["watchdog", "twice"])
def test_a_stuck_process_is_ended_by_the_watchdog_or_a_second_signal(
    signals: int, at_least_s: float
) -> None:
    code, seconds, stderr = _stop_after_signals(STUCK_MAIN_THREAD, signals)
    assert code == 1, stderr
    assert at_least_s <= seconds < at_least_s + 8
    assert "exiting now" in stderr
