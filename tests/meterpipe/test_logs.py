"""librdkafka's repeated lines (a reconnect storm) are held back, counted and summarised."""

from __future__ import annotations

import logging
from pathlib import Path

from meterpipe.broker import free_port
from meterpipe.logs import RepeatFilter
from tests.processes import run_cli

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
