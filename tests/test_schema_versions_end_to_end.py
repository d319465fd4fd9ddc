"""A rolling upgrade: events of an earlier schema version count exactly like current ones.

An ordinary confluent_kafka Producer writes what a producer not yet upgraded writes: Avro
single-object encoding of the first released schema (header from fastavro's fingerprint,
body from fastavro's schemaless writer), mixed with current-version events, repeated eventIds
across versions, and one event behind a fingerprint of no released version. A real
`meterpipe consume` process reads them; the totals must equal plain Decimal sums of the
records made here, and the unknown event must be dead-lettered as `unknown_schema`.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka import Producer

from tests.groundtruth import as_comparable, expected_totals_of
from tests.processes import totals, wait_for
from tests.schemas.schema_files import RELEASED_FILES, header, parse, read_avsc, written
from tests.topics import read_topic

pytestmark = pytest.mark.slow

Record = dict[str, Any]
FIRST, CURRENT = parse(read_avsc(RELEASED_FILES[0])), parse(read_avsc(RELEASED_FILES[-1]))
# Exact decimals at the edges: zero, the smallest unit, 24 significant digits, trailing zeros.
QUANTITIES = ["0", "0.000000000001", "999999999999.999999999999", "12.500", "7"]
OFFSETS = ["Z", "+01:00", "-05:30", "+14:00"]


def first_version_record(rng: random.Random, accounts: list[str]) -> Record:
    """A valid AppDirect event as the first released schema has it: nulls where allowed."""
    unit = rng.choice([("API_CALL", None), (None, "seats"), ("GB", "bytes")])
    priced = rng.random() < 0.5
    quantity = rng.choice([*QUANTITIES, f"{rng.randrange(10**6)}.{rng.randrange(10**12):012d}"])
    when = datetime.now(UTC) - timedelta(days=rng.randint(1, 40), seconds=rng.randint(0, 86399))
    return {
        "accountId": rng.choice(accounts), "developerId": str(uuid.UUID(int=rng.getrandbits(128))),
        "pricingUnit": unit[0], "customUnit": unit[1],
        "quantity": quantity, "unitPrice": "0.25" if priced else None,
        "currency": "EUR" if priced else None,
        "description": rng.choice([None, "", "Überstunden ☕"]),
        "eventDate": when.strftime("%Y-%m-%dT%H:%M:%S") + rng.choice(OFFSETS),
        "eventId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "billable": rng.random() < 0.7, "uploadRef": None, "rowNumber": None,
        "eventIdAssigned": False,
    }  # fmt: skip


def as_current(record: Record) -> Record:
    """`record` as the current schema has it."""
    return {**record, "sourceFormat": "appdirect", "subscriptionRef": None, "properties": None}


def mixed_events(seed: int) -> list[tuple[bytes, Record]]:
    """(message value, record) in production order: mostly the first version, some current
    ones, and a few repeats of earlier eventIds, in either version."""
    rng = random.Random(seed)
    accounts = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(6)]
    events: list[tuple[bytes, Record]] = []
    for n in range(600):
        record = first_version_record(rng, accounts)
        if n % 50 == 49:  # a repeat of an earlier eventId, with another quantity
            record["eventId"] = events[rng.randrange(len(events))][1]["eventId"]
        if n % 4 == 3:
            current = as_current(record)
            events.append((header(CURRENT) + written(CURRENT, current), current))
        else:
            events.append((header(FIRST) + written(FIRST, record), record))
    return events


@pytest.mark.usefixtures("consumer")
def test_earlier_schema_events_count_like_current_ones(pipeline_env: dict[str, str]) -> None:
    bootstrap, topic = pipeline_env["METERPIPE_BOOTSTRAP_SERVERS"], pipeline_env["METERPIPE_TOPIC"]
    producer = Producer({
        "bootstrap.servers": bootstrap, "enable.idempotence": True,
        "allow.auto.create.topics": False,
    })  # fmt: skip

    def topic_made() -> bool:  # by the consumer, with its partitions
        found = producer.list_topics(topic, timeout=10).topics[topic]
        return found.error is None and len(found.partitions) == 3

    wait_for(topic_made, 120, f"the consumer to create {topic}")
    events = mixed_events(seed=11)
    unknown = b"\xc3\x01" + bytes.fromhex("0123456789abcdef") + written(FIRST, events[0][1])
    producer.produce(topic, unknown, b"unknown-fingerprint")
    for value, record in events:  # keyed by eventId: repeats follow their first copy in order
        producer.produce(topic, value, record["eventId"].encode())
    assert producer.flush(60) == 0

    expected = expected_totals_of(record for _, record in events)
    assert sum(row["events"] for row in expected) < len(events)  # some repeats
    counted = sum(row["events"] for row in expected)
    wait_for(
        lambda: sum(row["events"] for row in totals(pipeline_env)) >= counted, 180, "all counted"
    )
    assert as_comparable(totals(pipeline_env)) == expected
    [letter] = read_topic(bootstrap, pipeline_env["METERPIPE_DLQ_TOPIC"], 1, settle_s=2.0)
    assert dict(letter.headers() or [])["meterpipe.reason"] == b"unknown_schema"
    assert letter.value() == unknown
