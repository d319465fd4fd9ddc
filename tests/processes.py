"""Running the real `meterpipe` CLI in child processes, and waiting on conditions."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
METERPIPE = [sys.executable, "-m", "meterpipe"]
# METERPIPE_CLIENT_OVERRIDES slowing a producer to a few thousand events/s, so that a kill
# lands mid-file.
SLOW_PRODUCER = '{"batch.num.messages": "1", "max.in.flight.requests.per.connection": "1"}'


def run_cli(
    env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run one meterpipe command to completion."""
    done = subprocess.run(
        [*METERPIPE, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"meterpipe {' '.join(args)} failed ({done.returncode}):\n{done.stderr}"
        )
    return done


def start_cli(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    """Start a long-running meterpipe command, its output going to `log`."""
    with log.open("ab") as handle:
        return subprocess.Popen(
            [*METERPIPE, *args], env=env, stdout=handle, stderr=subprocess.STDOUT
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it does not exit in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def poll(condition: Callable[[], T | None], timeout: float) -> T | None:
    """Poll `condition` until it returns something truthy (returned), or None after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    return None


def wait_for(condition: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll `condition` until it returns something truthy, or fail after `timeout` seconds."""
    value = poll(condition, timeout)
    if value is None:
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
    return value


def log_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON log lines a process has written to `path` so far."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8", errors="replace")
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def uploads(env: dict[str, str]) -> list[dict[str, Any]]:
    """`meterpipe uploads --json`."""
    result: list[dict[str, Any]] = json.loads(run_cli(env, "uploads", "--json").stdout)
    return result


def totals(env: dict[str, str], *args: str) -> list[dict[str, Any]]:
    """`meterpipe totals --json`."""
    result: list[dict[str, Any]] = json.loads(run_cli(env, "totals", "--json", *args).stdout)
    return result


def all_final(env: dict[str, str], count: int) -> list[dict[str, Any]] | None:
    """The uploads, once there are `count` of them and none is Processing."""
    found = uploads(env)
    if len(found) == count and all(u["status"] != "Processing" for u in found):
        return found
    return None


def hold_and_replay(env: dict[str, str], month: str, letters: int) -> dict[str, Any]:
    """Hold `month` again and replay the `period_closed` dead letters (`letters` of them);
    return the single upload once none of its events is rejected any more."""
    run_cli(env, "periods", "hold", month)
    replayed = run_cli(env, "dlq", "replay", "--reason", "period_closed").stdout
    assert f"replayed {letters} " in replayed

    def revived() -> dict[str, Any] | None:
        (now,) = uploads(env)
        return now if now["rejected"] == 0 else None

    return wait_for(revived, 120, "the dead letters revived")


def metrics_port(process: subprocess.Popen[bytes], log: Path) -> int:
    """The port a process started with METERPIPE_METRICS_PORT=0 serves its metrics on.

    Port 0 binds atomically; a port picked free beforehand can be taken by another process
    (a Kafka client's outgoing connection) before the child binds it.
    """
    return logged_port(process, log, "metricsPort")


def http_port(process: subprocess.Popen[bytes], log: Path) -> int:
    """The port a process started with METERPIPE_HTTP_PORT=0 serves its HTTP API on."""
    return logged_port(process, log, "httpPort")


def logged_port(process: subprocess.Popen[bytes], log: Path, key: str) -> int:
    """The port a process logged under `key` (it logs it once the port accepts connections)."""

    def logged() -> int | None:
        if process.poll() is not None:
            raise AssertionError(f"process exited ({process.returncode}); see {log}")
        return next((line[key] for line in log_lines(log) if key in line), None)

    return wait_for(logged, 120, f"{key} in the log")


def http_get(port: int, path: str) -> tuple[int, bytes]:
    """Status and body of a GET on a process's metrics port, error statuses included."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
