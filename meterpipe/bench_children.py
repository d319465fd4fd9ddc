"""The benchmark's children: meterpipe processes with their own topics and directories,
their peak memory, and waiting on an upload's progress in their store."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from meterpipe.errors import MeterpipeError
from meterpipe.settings import StoreSettings

__all__ = [
    "PHASE_TIMEOUT_S",
    "Child",
    "Phase",
    "Progress",
    "child_env",
    "phase_of",
    "upload_progress",
    "wait_done",
]

PHASE_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class Phase:
    """One measured phase; over several rounds, `events_per_s_range` is (lowest, highest)."""

    name: str
    events: int
    seconds: float
    events_per_s: float
    peak_rss_mb: float | None
    of_ceiling: float | None
    events_per_s_range: tuple[float, float] | None = None


def child_env(bootstrap: str, work: Path, tag: str) -> dict[str, str]:
    """A child's environment: its own topics, group and directories."""
    # Topic names are unique per run too: a configured cluster outlives any one run.
    names = f"bench-{tag}-{uuid.uuid4().hex[:8]}"
    return {
        **os.environ,
        "METERPIPE_BOOTSTRAP_SERVERS": bootstrap,
        "METERPIPE_TOPIC": names,
        "METERPIPE_DLQ_TOPIC": f"{names}-dlq",
        "METERPIPE_CONSUMER_GROUP": names,
        "METERPIPE_DATA_DIR": str(work / tag / "data"),
        "METERPIPE_INBOX": str(work / tag / "inbox"),
        "METERPIPE_MIN_FILE_AGE_S": "0",
        "METERPIPE_POLL_INTERVAL_S": "0.05",
        "METERPIPE_METRICS_PORT": "0",
        "METERPIPE_HTTP_PORT": "0",
    }


class Child:
    """A meterpipe child process and the high-water mark of its resident memory.

    `ru_maxrss` from wait4 cannot be used: Linux keeps the parent's high-water mark across
    fork and exec, so every child would report the benchmark's own size. VmHWM in /proc
    belongs to the new program; it is sampled until the child exits.
    """

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        with log.open("ab") as handle:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "meterpipe", "--log-level", "WARNING", *args],
                env=env, stdout=handle, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self._peak_kib = 0
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        status = Path(f"/proc/{self.process.pid}/status")
        while self.process.poll() is None:
            with contextlib.suppress(OSError, ValueError, StopIteration):
                line = next(x for x in status.read_text().splitlines() if x.startswith("VmHWM"))
                self._peak_kib = max(self._peak_kib, int(line.split()[1]))
            time.sleep(0.05)

    def finish(self, stop: bool = True) -> float:
        """Wait for the child (asking it to stop first if `stop`); return its peak RSS in MB."""
        if stop:
            self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=PHASE_TIMEOUT_S)
        self._sampler.join()
        return self._peak_kib / 1024


def upload_progress(data_dir: Path, nth: int) -> tuple[int, str | None]:
    """(events processed, status) of the `nth` upload of a data dir, read-only."""
    path = StoreSettings(data_dir=data_dir).sqlite_path
    if not path.exists():
        return 0, None
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
        try:
            row = db.execute(
                "SELECT accepted + duplicates + dead_lettered, status FROM uploads"
                " ORDER BY uploaded_at LIMIT 1 OFFSET ?",
                (nth - 1,),
            ).fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            return 0, None  # the child created the file but has not migrated it yet
    return (int(row[0]), str(row[1])) if row else (0, None)


Progress = Callable[[], tuple[int, str | None]]


def wait_done(progress: Progress, children: list[Child]) -> tuple[float, int]:
    """Poll `progress` (events processed, status) until the upload is final.

    Returns the time of the first progress seen and how many events were done then.
    """
    deadline = time.monotonic() + PHASE_TIMEOUT_S
    first: tuple[float, int] | None = None
    while time.monotonic() < deadline:
        if any(child.process.poll() is not None for child in children):
            raise MeterpipeError("a benchmark child exited early")
        done, status = progress()
        if done and first is None:
            first = (time.perf_counter(), done)
        if status in ("Done", "Error"):
            return first or (time.perf_counter(), 0)
        time.sleep(0.05)
    raise MeterpipeError("benchmark phase timed out")


def phase_of(
    name: str, events: int, seconds: float, rss: float | None, ceiling: float | None
) -> Phase:
    rate = events / seconds if seconds > 0 else 0.0
    share = round(rate / ceiling, 3) if ceiling else None
    return Phase(name, events, round(seconds, 3), round(rate), rss and round(rss, 1), share)
