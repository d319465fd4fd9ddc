"""The textbook pipeline: the same job written one row at a time, as a yardstick.

What a Python developer writes first with the same libraries: `csv.DictReader`, the
pydantic models, fastavro's per-record writer and reader, confluent-kafka's `produce` and
`poll`, and a SQLite table of seen eventIds with Decimal totals. It validates, publishes,
deduplicates and adds exactly as meterpipe does, and its totals are checked against the
same ground truth, so `meterpipe bench` can say how many times faster meterpipe is at the
same work. The consumer runs in a process of its own beside the publisher, as meterpipe's
`up` overlaps its two sides.
"""

from __future__ import annotations

import csv
import io
import multiprocessing
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from decimal import Decimal
from multiprocessing.synchronize import Event as EventFlag
from pathlib import Path
from typing import Any

import fastavro
from confluent_kafka import Consumer, KafkaError, Message, Producer

from meterpipe.errors import MeterpipeError
from meterpipe.kafka_config import consumer_config, producer_config
from meterpipe.settings import KafkaSettings
from schemas.model import UsageEvent, UsageRow
from schemas.versions import CURRENT

__all__ = ["textbook_end_to_end", "textbook_totals"]

COMMIT_EVERY = 10_000  # events per store transaction and Kafka commit
TIMEOUT_S = 900.0
_TOTALS = (
    "SELECT accountId, pricingUnit, customUnit, events, quantity, billableQuantity FROM totals"
)


def textbook_end_to_end(
    kafka: KafkaSettings, bootstrap: str, source: Path, store: Path
) -> tuple[int, float]:
    """The rows of `source`, and the seconds from the first read to the last event's totals
    committed in `store`.

    `kafka` names fresh topics of its own; `source` holds only valid AppDirect rows.
    """
    rows = sum(1 for _ in _records(source))
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    consumer = context.Process(
        target=_consume, args=(kafka, bootstrap, store, rows, ready), name="textbook-consumer"
    )
    consumer.start()
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not ready.wait(0.1):  # timed like `up`: from a consumer already in its group
            if not consumer.is_alive() or time.monotonic() > deadline:
                raise MeterpipeError("the textbook consumer never joined its group")
        started = time.perf_counter()
        _publish(kafka, bootstrap, source)
        consumer.join(TIMEOUT_S)
        seconds = time.perf_counter() - started
    finally:
        if consumer.is_alive():
            consumer.kill()
    if consumer.exitcode != 0:
        raise MeterpipeError(f"the textbook consumer ended with exit code {consumer.exitcode}")
    return rows, seconds


def textbook_totals(store: Path) -> list[dict[str, Any]]:
    """The totals the textbook consumer committed, one dict per (account, unit, custom unit)."""
    with closing(sqlite3.connect(store)) as db:
        cursor = db.execute(_TOTALS)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]


def _records(source: Path) -> Iterator[dict[str, str]]:
    with source.open(newline="", encoding="utf-8") as handle:
        yield from csv.DictReader(handle)


def _publish(kafka: KafkaSettings, bootstrap: str, source: Path) -> None:
    """Validate each row, give it an eventId if it has none, encode it and produce it."""
    producer = Producer(producer_config(kafka, bootstrap))
    failures: list[KafkaError] = []

    def delivered(error: KafkaError | None, _: Message) -> None:
        if error is not None:
            failures.append(error)

    for number, cells in enumerate(_records(source), start=2):
        event = UsageRow.model_validate(cells).model_dump(mode="json")
        if event["eventId"] is None:
            event["eventId"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{source}#{number}"))
        event.update(uploadRef=source.name, rowNumber=number)
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, CURRENT.parsed, event)
        while True:
            try:
                value, key = buffer.getvalue(), event["eventId"]
                producer.produce(kafka.topic, value, key, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    if producer.flush(TIMEOUT_S) or failures:
        raise MeterpipeError(f"the textbook publisher lost events: {failures[:3]}")


def _consume(
    kafka: KafkaSettings, bootstrap: str, store: Path, count: int, ready: EventFlag
) -> None:
    """Read `count` events; count each eventId once; commit totals, then Kafka's offsets.

    `ready` is set once the group has given this consumer its partitions."""
    config = consumer_config(kafka, bootstrap, f"textbook-{uuid.uuid4().hex[:8]}")
    consumer = Consumer({**config, "enable.auto.offset.store": True})
    consumer.subscribe([kafka.topic])
    db = sqlite3.connect(store)
    db.execute("PRAGMA journal_mode=WAL")  # the durability meterpipe's own store has
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE seen (eventId TEXT PRIMARY KEY)")
    db.execute(
        "CREATE TABLE totals (accountId TEXT, pricingUnit TEXT, customUnit TEXT, events INTEGER,"
        " quantity TEXT, billableQuantity TEXT, PRIMARY KEY (accountId, pricingUnit, customUnit))"
    )
    totals: dict[tuple[str, str, str], list[Any]] = {}
    changed: set[tuple[str, str, str]] = set()
    deadline = time.monotonic() + TIMEOUT_S
    read = 0
    while read < count and time.monotonic() < deadline:
        message = consumer.poll(0.1)
        if not ready.is_set() and consumer.assignment():
            ready.set()
        if message is None or message.error() is not None:
            continue
        read += 1
        value = io.BytesIO(message.value() or b"")
        event = UsageEvent.model_validate(fastavro.schemaless_reader(value, CURRENT.parsed, None))
        if db.execute("INSERT OR IGNORE INTO seen VALUES (?)", (event.event_id,)).rowcount:
            key = (event.account_id, event.pricing_unit or "", event.custom_unit or "")
            total = totals.setdefault(key, [0, Decimal(0), Decimal(0)])
            quantity = Decimal(str(event.quantity))
            total[0] += 1
            total[1] += quantity
            total[2] += quantity if event.billable else 0
            changed.add(key)
        if read % COMMIT_EVERY == 0 or read == count:
            rows = [(*key, *(str(value) for value in totals[key])) for key in changed]
            db.executemany("INSERT OR REPLACE INTO totals VALUES (?, ?, ?, ?, ?, ?)", rows)
            db.commit()
            consumer.commit(asynchronous=False)
            changed.clear()
    consumer.close()
    db.close()
    if read < count:
        raise SystemExit(f"the textbook consumer read {read} of {count} events")
