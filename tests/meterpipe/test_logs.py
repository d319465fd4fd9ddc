"""Log lines: readable on a terminal, JSON otherwise or as told; librdkafka's repeated lines
(a reconnect storm) held back, counted and summarised."""

from __future__ import annotations

import logging
import os
import pty
import select
import subprocess
import time
from pathlib import Path

from meterpipe.broker import free_port
from meterpipe.logs import RepeatFilter
from tests.processes import METERPIPE, run_cli, start_cli, stop, wait_for

REFUSED = "FAIL [rdkafka#producer-1] 127.0.0.1:{port}/bootstrap: Connect to ipv4#127.0.0.1:{port}"


def _record(message: str, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("librdkafka", level, __file__, 1, message, None, None)


def test_repeats_inside_the_window_are_held_back_then_counted() -> None:
    now = [0.0]
    repeats = RepeatFilter(30.0, clock=lambda: now[0])
    refused = REFUSED.format(port=9092) + " failed: Connection refused (after {}ms)"
    shown = []
    for at, message in [
        (0.0, refused.format(0)), (1.0, refused.format(3)), (29.0, refused.format(1)),
        (5.0, REFUSED.format(port=9093) + " failed"),  # another broker: its own line
        (31.0, refused.format(0)), (32.0, refused.format(0)),
    ]:  # fmt: skip
        now[0] = at
        record = _record(message)
        if repeats.filter(record):
            shown.append((at, record.getMessage(), getattr(record, "repeated", 0)))
    assert shown == [
        (0.0, refused.format(0), 0),
        (5.0, REFUSED.format(port=9093) + " failed", 0),
        (31.0, refused.format(0) + " (2 more like it since last logged)", 2),
    ]
    # The same text at another level is another message.
    now[0] = 33.0
    assert repeats.filter(_record(refused.format(0), logging.WARNING))


def test_the_cli_holds_back_librdkafkas_repeats(tmp_path: Path) -> None:
    header = "accountId,pricingUnit,quantity,unitPrice,currency,eventDate,eventId\n"
    (tmp_path / "empty.csv").write_text(header)
    env = {
        "METERPIPE_DATA_DIR": str(tmp_path / "data"),
        "METERPIPE_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "METERPIPE_CONNECT_TIMEOUT_S": "5",  # time for several reconnect attempts
    }
    done = run_cli(env, "publish", str(tmp_path / "empty.csv"), check=False)
    assert "cannot reach Kafka" in done.stderr
    refused = [line for line in done.stderr.splitlines() if '"librdkafka"' in line]
    assert len(refused) == 1
    assert "Connection refused" in refused[0]


def _first_lines_under_a_terminal(env: dict[str, str], *args: str) -> str:
    """What a process writes to a terminal (a pseudo-terminal) until it logs its metrics."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [*METERPIPE, *args], env=env, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower
    )
    os.close(follower)
    seen = b""
    try:
        deadline = time.monotonic() + 120
        while b"metrics at" not in seen and time.monotonic() < deadline:
            if select.select([leader], [], [], 1.0)[0]:
                seen += os.read(leader, 65536)
    finally:
        stop(process)
        os.close(leader)
    return seen.decode(errors="replace")


def test_a_terminal_gets_readable_lines_and_a_pipe_json_unless_told(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    terminal = _first_lines_under_a_terminal(pipeline_env, "consume")
    (line,) = [line for line in terminal.splitlines() if "metrics at" in line and "INFO" in line]
    assert "INFO meterpipe: metrics at http://127.0.0.1:" in line
    assert not line.lstrip().startswith("{")
    as_json = _first_lines_under_a_terminal(
        {**pipeline_env, "METERPIPE_LOG_FORMAT": "json"}, "consume"
    )
    assert '"message": "metrics at http://127.0.0.1:' in as_json
    log = tmp_path / "piped.log"
    piped = start_cli({**pipeline_env, "METERPIPE_LOG_FORMAT": "text"}, log, "consume")
    try:
        wait_for(lambda: "metrics at" in log.read_text(), 120, "the metrics line")
    finally:
        stop(piped)
    assert "INFO meterpipe: metrics at" in log.read_text()
