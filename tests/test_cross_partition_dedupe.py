"""One eventId arriving on two partitions at once is counted once, on both stores.

Partitions do not own eventIds: a producer that hashes keys differently (a Java service's
murmur2 against librdkafka's CRC32), or a partition count raised mid-upload, puts copies of
one eventId on partitions that different consumers hold. Two real `meterpipe consume`
processes read both copies at about the same time; the store must accept each eventId once.
"""

from __future__ import annotations

import csv
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewPartitions

from meterpipe.sample_data import SampleSpec, write_sample_file
from tests.groundtruth import as_comparable, expected_totals
from tests.postgres import ON_EITHER_STORE
from tests.processes import all_final, log_lines, run_cli, start_cli, stop, totals, wait_for
from tests.schemas.schema_files import CURRENT_FILE, header, parse, read_avsc, written

pytestmark = pytest.mark.slow

EVENTS = 20_000
ROWS = 10_000  # of each of the two uploads sharing eventIds


@pytest.fixture
def env(pipeline_env: dict[str, str]) -> dict[str, str]:
    """The pipeline's environment with small batches: many interleavings of the copies."""
    return {**pipeline_env, "METERPIPE_BATCH_MAX_EVENTS": "500"}


def _start_consumers(env: dict[str, str], tmp_path: Path, count: int) -> list[Any]:
    return [start_cli(env, tmp_path / f"consumer-{n}.log", "consume") for n in range(count)]


def _committed(logs: list[Path]) -> dict[str, int]:
    """What the consumers' committed batches add up to, from their logs."""
    sums = {"events": 0, "accepted": 0, "duplicates": 0, "redelivered": 0}
    for log in logs:
        for line in log_lines(log):
            if line["message"] == "batch committed":
                for key in sums:
                    sums[key] += line[key]
    return sums


def _latest_assignment(log: Path) -> set[int]:
    """A consumer's latest assignment: an (eager) rebalance logs each partition at once."""
    assigned = [
        (datetime.fromisoformat(line["time"]), line["partition"])
        for line in log_lines(log)
        if line["message"].startswith("assigned partition")
    ]
    if not assigned:
        return set()
    latest = max(when for when, _ in assigned)
    return {p for when, p in assigned if latest - when < timedelta(seconds=1)}


def _each_holds_a_partition(logs: list[Path], partitions: int) -> bool:
    """Whether the consumers hold disjoint, non-empty shares of every partition."""
    shares = [_latest_assignment(log) for log in logs]
    every = [p for share in shares for p in share]
    return all(shares) and sorted(every) == list(range(partitions))


def _event(n: int, when: str) -> dict[str, Any]:
    """Event n without provenance, as any producer could write it."""
    return {
        "accountId": f"00000000-0000-4000-8000-{n % 7:012d}",
        "developerId": "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d",
        "pricingUnit": "API_CALL",
        "customUnit": None,
        "quantity": f"{n % 13}.{n % 1000:03d}",
        "unitPrice": None,
        "description": None,
        "currency": None,
        "eventDate": when,
        "eventId": f"evt-{n}",
        "billable": n % 3 != 0,
        "uploadRef": None,
        "rowNumber": None,
        "eventIdAssigned": False,
        "sourceFormat": "appdirect",
        "subscriptionRef": None,
        "properties": None,
    }


@ON_EITHER_STORE
def test_one_event_id_on_two_partitions_is_counted_once(
    env: dict[str, str], tmp_path: Path
) -> None:
    env = {**env, "METERPIPE_PARTITIONS": "2"}
    consumers = _start_consumers(env, tmp_path, 2)
    logs = [tmp_path / f"consumer-{n}.log" for n in range(2)]
    try:
        wait_for(lambda: _each_holds_a_partition(logs, 2), 120, "one partition each")
        schema = parse(read_avsc(CURRENT_FILE))
        producer = Producer({"bootstrap.servers": env["METERPIPE_BOOTSTRAP_SERVERS"]})
        # Now: an open billing period whatever the day the suite runs.
        when = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        events = [_event(n, when) for n in range(EVENTS)]
        for record in events:
            value = header(schema) + written(schema, record)
            for partition in (0, 1):
                producer.produce(env["METERPIPE_TOPIC"], value, record["eventId"], partition)
            producer.poll(0)
        assert producer.flush(60) == 0
        wait_for(lambda: _committed(logs)["events"] >= 2 * EVENTS, 240, "both copies committed")
    finally:
        for process in consumers:
            stop(process)
    committed = _committed(logs)
    assert committed["events"] == 2 * EVENTS
    assert committed["accepted"] == EVENTS
    assert committed["duplicates"] == EVENTS
    # Ground truth from the records themselves, with Decimal.
    expected: dict[str, list[Any]] = {}
    for record in events:
        entry = expected.setdefault(record["accountId"], [0, Decimal(0), Decimal(0)])
        entry[0] += 1
        entry[1] += Decimal(record["quantity"])
        entry[2] += Decimal(record["quantity"]) if record["billable"] else 0
    found = {
        row["accountId"]: [
            row["events"],
            Decimal(row["quantity"]),
            Decimal(row["billableQuantity"]),
        ]
        for row in totals(env)
    }
    assert found == expected


def _files_sharing_event_ids(directory: Path, rows: int) -> tuple[Path, Path]:
    """Two files of the same rows (same content) with the same new eventIds."""
    sample = directory / "sample.csv"
    write_sample_file(sample, SampleSpec(rows=rows, seed=21, accounts=12))
    ids = [f"shared-{uuid.uuid4().hex}" for _ in range(rows)]
    first, second = directory / "first.csv", directory / "second.csv"
    _with_event_ids(sample, first, ids)
    _with_event_ids(sample, second, ids)
    return first, second


def _assert_counted_once(env: dict[str, str], done: list[dict[str, Any]], first: Path) -> None:
    """Both uploads Done, each shared eventId accepted once, totals those of one file."""
    assert [u["status"] for u in done] == ["Done", "Done"]
    assert sum(u["accepted"] for u in done) == ROWS
    assert sum(u["duplicates"] for u in done) == ROWS
    assert as_comparable(totals(env)) == expected_totals(first)


def _with_event_ids(source: Path, target: Path, ids: list[str]) -> None:
    """`source` with its eventIds replaced by `ids`, row for row (nothing else changes)."""
    with source.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    with target.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(
            {**row, "eventId": event_id} for row, event_id in zip(rows, ids, strict=True)
        )


@ON_EITHER_STORE
def test_uploads_sharing_event_ids_through_differently_hashing_producers(
    env: dict[str, str], tmp_path: Path
) -> None:
    """Two uploads of the same rows (same eventIds, same content) under other references, one
    produced with librdkafka's CRC32 partitioner and one with murmur2 as a Java producer
    would: their copies of an eventId land on different partitions, consumed at once."""
    env = {**env, "METERPIPE_PARTITIONS": "4"}
    first, second = _files_sharing_event_ids(tmp_path, ROWS)
    consumers = _start_consumers(env, tmp_path, 2)
    logs = [tmp_path / f"consumer-{n}.log" for n in range(2)]
    try:
        wait_for(lambda: _each_holds_a_partition(logs, 4), 120, "partitions shared out")
        crc32 = {**env, "METERPIPE_CLIENT_OVERRIDES": '{"partitioner": "consistent_random"}'}
        murmur2 = {**env, "METERPIPE_CLIENT_OVERRIDES": '{"partitioner": "murmur2_random"}'}
        publishers = [
            start_cli(crc32, tmp_path / "p1.log", "publish", str(first), "--reference", "a"),
            start_cli(
                murmur2, tmp_path / "p2.log", "publish", str(second), "--reference", "b", "--force"
            ),
        ]
        for publisher in publishers:
            assert publisher.wait(timeout=240) == 0, (tmp_path / "p1.log").read_text()
        done = wait_for(lambda: all_final(env, 2), 240, "both uploads Done")
    finally:
        for process in consumers:
            stop(process)
    _assert_counted_once(env, done, first)


@ON_EITHER_STORE
@pytest.mark.parametrize("broker", ["kafka"], indirect=True)
def test_partitions_added_between_two_uploads_sharing_event_ids(
    env: dict[str, str], tmp_path: Path
) -> None:
    """An operator raises the partition count between two uploads of the same eventIds while
    both are consumed: keys of the second land on other partitions than the first's. Apache
    Kafka only (the embedded broker cannot add partitions)."""
    # Consumers see new partitions at their next metadata refresh (librdkafka: 5 minutes).
    env = {
        **env, "METERPIPE_PARTITIONS": "2",
        "METERPIPE_CLIENT_OVERRIDES": '{"topic.metadata.refresh.interval.ms": "1000"}',
    }  # fmt: skip
    first, second = _files_sharing_event_ids(tmp_path, ROWS)
    consumers = _start_consumers(env, tmp_path, 2)
    logs = [tmp_path / f"consumer-{n}.log" for n in range(2)]
    try:
        # Both members joined; how Apache Kafka shares the partitions out is its own affair.
        wait_for(lambda: all(_latest_assignment(log) for log in logs), 120, "both consumers in")
        run_cli(env, "publish", str(first), "--reference", "before")
        admin = AdminClient({"bootstrap.servers": env["METERPIPE_BOOTSTRAP_SERVERS"]})
        for future in admin.create_partitions([NewPartitions(env["METERPIPE_TOPIC"], 4)]).values():
            future.result(timeout=60)
        run_cli(env, "publish", str(second), "--reference", "after", "--force")
        done = wait_for(lambda: all_final(env, 2), 240, "both uploads Done")
    finally:
        for process in consumers:
            stop(process)
    _assert_counted_once(env, done, first)
