"""Poison messages go to the dead-letter topic with their reason; the stream goes on.

The poison: random bytes, a valid Avro body behind an unknown schema fingerprint, and a
10 MB message (over the 1 MB default METERPIPE_MAX_MESSAGE_BYTES). Apache Kafka enforces
the topic's `max.message.bytes` that meterpipe sets, so the topic is created beforehand as
another tool might have, with a 20 MB limit: the consumer must enforce its own.
"""

from __future__ import annotations

import hashlib
import random
import struct
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from meterpipe.sample_data import SampleSpec, write_sample_file
from tests.groundtruth import as_comparable, expected_totals
from tests.postgres import ON_EITHER_STORE
from tests.processes import all_final, run_cli, start_cli, stop, totals, wait_for
from tests.topics import read_topic

pytestmark = [pytest.mark.slow, pytest.mark.both_brokers, ON_EITHER_STORE]


def _text(value: str | bytes | None) -> str:
    return value.decode() if isinstance(value, bytes) else value or ""


def _dead_letters(env: dict[str, str], count: int) -> list[dict[str, Any]]:
    """The dead-letter topic's messages: each header as text, and the value."""
    found = []
    topic = env["METERPIPE_DLQ_TOPIC"]
    for message in read_topic(env["METERPIPE_BOOTSTRAP_SERVERS"], topic, count):
        headers = message.headers() or []
        assert isinstance(headers, list)
        letter: dict[str, Any] = {key: _text(value) for key, value in headers}
        found.append({**letter, "value": message.value()})
    return found


def _create_roomy_topic(env: dict[str, str]) -> None:
    """The event topic, allowing messages of up to 20 MB."""
    admin = AdminClient({"bootstrap.servers": env["METERPIPE_BOOTSTRAP_SERVERS"]})
    topic = NewTopic(
        env["METERPIPE_TOPIC"], int(env["METERPIPE_PARTITIONS"]), 1,
        config={"max.message.bytes": "20000000", "cleanup.policy": "delete"},
    )  # fmt: skip
    admin.create_topics([topic])[env["METERPIPE_TOPIC"]].result(timeout=30)


def test_poison_messages_are_dead_lettered_and_good_events_still_count(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    _create_roomy_topic(pipeline_env)
    consumer = start_cli(pipeline_env, tmp_path / "consumer.log", "consume")
    try:
        _poison_and_publish(pipeline_env, tmp_path)
    finally:
        stop(consumer)


def _poison_and_publish(pipeline_env: dict[str, str], tmp_path: Path) -> None:
    poison = Producer({
        "bootstrap.servers": pipeline_env["METERPIPE_BOOTSTRAP_SERVERS"],
        "message.max.bytes": 20_000_000,
    })  # fmt: skip
    topic = pipeline_env["METERPIPE_TOPIC"]
    huge = random.Random(5).randbytes(10 * 1024 * 1024)
    poison.produce(topic, b"plain text, not Avro at all", b"random")
    poison.produce(topic, b"\xc3\x01" + struct.pack("<q", 12345) + b"\x00", b"fingerprint")
    poison.produce(topic, huge, b"huge")
    assert poison.flush(60) == 0
    path = tmp_path / "good.csv"
    write_sample_file(path, SampleSpec(rows=1_000, seed=9, accounts=10))
    run_cli(pipeline_env, "publish", str(path))
    wait_for(lambda: all_final(pipeline_env, 1), 120, "upload Done")
    assert as_comparable(totals(pipeline_env)) == expected_totals(path)
    letters = {letter["meterpipe.reason"]: letter for letter in _dead_letters(pipeline_env, 3)}
    assert set(letters) == {"not_avro", "unknown_schema", "too_large"}
    assert all(letter["meterpipe.source.topic"] == topic for letter in letters.values())
    # Too big to produce again: its head, with the size and digest of the whole.
    too_large = letters["too_large"]
    assert too_large["meterpipe.original.size"] == str(len(huge))
    assert too_large["meterpipe.original.sha256"] == hashlib.sha256(huge).hexdigest()
    assert huge.startswith(too_large["value"])
    assert 0 < len(too_large["value"]) <= 64 * 1024
