"""Log lines for people on a terminal, JSON lines for log collectors everywhere else.

Fields passed with `extra=` (upload reference, partition, batch figures) become JSON keys,
so an operator can filter on them without parsing prose.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

__all__ = ["KAFKA_LOGGER", "JsonFormatter", "RepeatFilter", "configure_logging"]

KAFKA_LOGGER = "librdkafka"  # the logger every client's own log lines go to
KAFKA_REPEAT_WINDOW_S = 30.0  # a librdkafka message and its repeats: one line per window

# "(after 3ms in state CONNECT)": a timing, not what the message is about.
TIMINGS = re.compile(r"\d+ms\b")
MAX_REMEMBERED = 1_000  # distinct messages a RepeatFilter keeps track of

# Attributes every LogRecord has; anything else on a record came from `extra=`.
STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(
            (key, value) for key, value in vars(record).items() if key not in STANDARD_ATTRIBUTES
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str, as_json: bool | None = None) -> None:
    """Log to stderr at `level`; JSON unless stderr is a terminal (or as told).

    librdkafka's lines pass a RepeatFilter: one line per message and window.
    """
    handler = logging.StreamHandler(sys.stderr)
    use_json = not sys.stderr.isatty() if as_json is None else as_json
    handler.setFormatter(
        JsonFormatter()
        if use_json
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger(KAFKA_LOGGER).filters[:] = [RepeatFilter(KAFKA_REPEAT_WINDOW_S)]


class RepeatFilter(logging.Filter):
    """Lets a message through at most once per window; its repeats are counted meanwhile.

    While a broker is down, librdkafka reports every reconnect attempt at ERROR, several a
    second per client: an outage of minutes buried everything else in the log. The first
    line still shows at once, and the first after the window says (and, as JSON, has in
    `repeated`) how many like it were held back. Messages differing only in a timing
    ("after 3ms") are alike; any other difference (a broker, a partition) keeps them apart.
    """

    def __init__(self, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._shown: dict[str, tuple[float, int]] = {}  # alike -> (shown at, held back since)

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a repeat inside the window; a passing repeat says how many were held."""
        alike = f"{record.levelno} {TIMINGS.sub('#ms', record.getMessage())}"
        now = self._clock()
        with self._lock:
            shown_at, held = self._shown.get(alike, (-math.inf, 0))
            if now - shown_at < self._window_s:
                self._shown[alike] = (shown_at, held + 1)
                return False
            if len(self._shown) >= MAX_REMEMBERED:
                self._shown.clear()  # costs a line per message, and the counts so far
            self._shown[alike] = (now, 0)
        if held:
            record.msg = f"{record.getMessage()} ({held} more like it since last logged)"
            record.args = None
            record.repeated = held
        return True
