"""A single Apache Kafka broker SIGKILLed mid-upload and started again on its own data.

Unlike the embedded broker (tests/test_up_and_metrics.py, tests/test_broker_restart_postgres.py:
it keeps everything in memory, so `meterpipe up` restarts it and publishes again), Kafka
comes back with its log: the producer's retries reach it, the consumer's stored offsets
still name the same log, and nothing is published twice.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from meterpipe.sample_data import SampleSpec, write_sample_file
from tests.groundtruth import as_comparable, expected_totals
from tests.kafka_cluster import KafkaCluster
from tests.processes import all_final, start_cli, stop, totals, wait_for

pytestmark = pytest.mark.slow

ROWS = 100_000


@pytest.fixture
def broker(apache_kafka: KafkaCluster) -> KafkaCluster:
    """`pipeline_env` on this test process's single-node Apache Kafka."""
    return apache_kafka


def test_kafka_killed_mid_upload_comes_back_with_its_log(
    apache_kafka: KafkaCluster, pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**pipeline_env, "METERPIPE_BATCH_MAX_EVENTS": "5000"}
    path = tmp_path / "usage.csv"
    write_sample_file(path, SampleSpec(rows=ROWS, seed=61, accounts=500))
    consumer = start_cli(env, tmp_path / "consumer.log", "consume")
    publisher = start_cli(env, tmp_path / "publish.log", "publish", str(path))
    try:
        topic = env["METERPIPE_TOPIC"]
        wait_for(lambda: apache_kafka.written(topic) > 0, 180, "the upload producing")
        assert apache_kafka.written(topic) < ROWS, "the upload was over before the kill"
        apache_kafka.kill(1)
        apache_kafka.start_node(1)
        assert publisher.wait(timeout=240) == 0, (tmp_path / "publish.log").read_text()
        (upload,) = wait_for(lambda: all_final(env, 1), 240, "upload Done")
    finally:
        stop(publisher)
        stop(consumer)
    expected = expected_totals(path)
    assert upload["status"] == "Done"
    assert upload["accepted"] + upload["duplicates"] == ROWS
    assert upload["accepted"] == sum(row["events"] for row in expected)
    assert as_comparable(totals(env)) == expected
    assert apache_kafka.written(topic) == ROWS  # nothing published twice
