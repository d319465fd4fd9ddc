"""Bounded graceful shutdown: after SIGTERM or SIGINT a process is gone within a known time.

Orchestrators (Kubernetes, systemd, compose) send SIGTERM and SIGKILL a little later, so a
stop must be quick and must never depend on a slow broker or a big file. The first signal
sets the stop event: loops end at their next unit of work (a batch, a chunk), and threads
are joined until `shutdown_timeout_s` has passed. A thread still running then is abandoned,
which is safe by design: a store batch commits in one transaction with its offsets, and an
upload is only final once every event is acknowledged, so whatever was in hand is done
again after the restart. A second signal, or a main thread still stuck a few seconds past
the deadline, ends the process at once (exit code 1).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["Shutdown", "stop_on_signals"]

log = logging.getLogger(__name__)
WATCHDOG_GRACE_S = 3.0
FORCED_EXIT_CODE = 1


def _exit_now(reason: str, code: int = FORCED_EXIT_CODE) -> None:
    """End the process without waiting for anything (threads, destructors, atexit)."""
    if reason:
        log.error("%s; exiting now", reason)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class Shutdown:
    """A stop request with a deadline, shared by every loop of a process."""

    def __init__(self, timeout_s: float) -> None:
        self.stop = threading.Event()
        self.timeout_s = timeout_s
        self.abandoned: list[str] = []
        self._deadline: float | None = None

    def request(self) -> None:
        """Ask every loop to stop; the time budget starts now (only the first time)."""
        if self._deadline is None:
            self._deadline = time.monotonic() + self.timeout_s
        self.stop.set()

    def remaining(self) -> float:
        """Seconds left before work in hand is abandoned (the whole budget until requested)."""
        if self._deadline is None:
            return self.timeout_s
        return max(self._deadline - time.monotonic(), 0.0)

    def join(self, *threads: threading.Thread) -> None:
        """Wait for `threads` until the deadline; remember (and log) those left running."""
        self.request()
        for thread in threads:
            thread.join(self.remaining())
            if thread.is_alive():
                log.warning(
                    "%s thread still busy after %.0f s; abandoning its work in hand",
                    thread.name, self.timeout_s, extra={"abandoned": thread.name},
                )  # fmt: skip
                self.abandoned.append(thread.name)


@contextmanager
def stop_on_signals(timeout_s: float) -> Iterator[Shutdown]:
    """A Shutdown requested by SIGINT/SIGTERM, with a watchdog that bounds the whole stop.

    If the body had to abandon threads, the process ends (exit 0) as the block is left.
    """
    shutdown = Shutdown(timeout_s)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if shutdown.stop.is_set():
            _exit_now(f"second {signal.Signals(signum).name}")
        log.info(
            "%s received: stopping within %.0f s", signal.Signals(signum).name, timeout_s,
            extra={"signal": signal.Signals(signum).name},
        )  # fmt: skip
        shutdown.request()
        watchdog = threading.Timer(
            timeout_s + WATCHDOG_GRACE_S, _exit_now, (f"shutdown not finished after {timeout_s} s",)
        )
        watchdog.daemon = True
        watchdog.start()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield shutdown
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if shutdown.abandoned:
        # Abandoned threads may sit in librdkafka or the store driver; interpreter teardown
        # would wait on them or run destructors under them. Their work is safely redone.
        _exit_now("", code=0)
