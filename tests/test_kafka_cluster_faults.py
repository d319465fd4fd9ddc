"""Apache Kafka's own faults: a three-node KRaft cluster loses a partition leader, and is
restarted node by node, while meterpipe publishes and consumes.

Topics have 3 replicas and min.insync.replicas=2 (meterpipe's settings); producers use
acks=all and idempotence. A killed leader's partitions move to an in-sync follower; the
producer retries there without writing twice, and the consumer reads on from the new leader.
Every upload must end Done, with totals equal to the ground truth and every row counted
once (accepted + duplicates = rows).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from meterpipe.sample_data import SampleSpec, write_sample_file
from tests.groundtruth import as_comparable, expected_totals
from tests.kafka_cluster import KafkaCluster, running_cluster
from tests.processes import all_final, start_cli, stop, totals, wait_for

# One process runs both tests (`--dist loadgroup`): one three-node cluster is started.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("kafka-three-nodes")]

# Rows of the upload a leader is killed under: long enough on three nodes sharing two cores
# for each kill to land in the middle of publishing and of consuming, short enough for the
# suite.
ROWS = 300_000
ROLLING_ROWS = 40_000  # per file; one file is published while each node restarts


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """Three combined broker+controller nodes, shared by this module's tests."""
    with running_cluster(tmp_path_factory.mktemp("kafka-3"), 3) as started:
        yield started


@pytest.fixture
def broker(cluster: KafkaCluster) -> KafkaCluster:
    """`pipeline_env` on the three-node cluster."""
    return cluster


@pytest.fixture
def env(pipeline_env: dict[str, str]) -> dict[str, str]:
    """Replicated topics; small consumer batches, so consumption lasts long enough to be hit."""
    return {
        **pipeline_env,
        "METERPIPE_REPLICATION_FACTOR": "3",
        "METERPIPE_MIN_INSYNC_REPLICAS": "2",
        "METERPIPE_BATCH_MAX_EVENTS": "10000",
    }


def _sample(tmp_path: Path, rows: int, seed: int) -> Path:
    path = tmp_path / f"usage-{seed}.csv"
    write_sample_file(path, SampleSpec(rows=rows, seed=seed, accounts=500))
    return path


def _kill_leader_and_restart(cluster: KafkaCluster, topic: str, log: Path | None = None) -> int:
    """SIGKILL the node leading partition 0 of `topic`, start it again; its id. With a
    consumer's `log`: the consumer must commit batches after the kill."""
    leader = wait_for(lambda: cluster.leader_of(topic, 0), 60, "the leader of partition 0")
    cluster.kill(leader)
    if log is not None:
        committed = log.read_text().count("batch committed")
        wait_for(lambda: log.read_text().count("batch committed") > committed, 120, "a batch")
    wait_for(lambda: cluster.leader_of(topic, 0) not in (None, leader), 60, "a new leader")
    cluster.start_node(leader)
    wait_for(lambda: cluster.fully_replicated(topic), 120, f"{topic} in sync again")
    return leader


def _assert_counted_once(env: dict[str, str], paths: list[Path], rows: int) -> None:
    found = wait_for(lambda: all_final(env, len(paths)), 300, "every upload final")
    assert [upload["status"] for upload in found] == ["Done"] * len(paths)
    assert sum(u["accepted"] + u["duplicates"] for u in found) == rows
    expected = expected_totals(*paths)
    assert sum(u["accepted"] for u in found) == sum(row["events"] for row in expected)
    assert as_comparable(totals(env)) == expected


def test_leader_killed_mid_upload_and_mid_consumption(
    cluster: KafkaCluster, env: dict[str, str], tmp_path: Path
) -> None:
    path = _sample(tmp_path, ROWS, seed=31)
    topic = env["METERPIPE_TOPIC"]
    publisher = start_cli(env, tmp_path / "publish.log", "publish", str(path))
    try:
        wait_for(lambda: cluster.written(topic) > 0, 180, "the upload producing")
        assert cluster.written(topic) < ROWS, "the upload was over before the leader was killed"
        _kill_leader_and_restart(cluster, topic)
        assert publisher.wait(timeout=300) == 0, (tmp_path / "publish.log").read_text()
    finally:
        stop(publisher)
    log = tmp_path / "consumer.log"
    consumer = start_cli(env, log, "consume")
    try:
        wait_for(lambda: "batch committed" in log.read_text(), 120, "consumer mid-stream")
        _kill_leader_and_restart(cluster, topic, log)
        _assert_counted_once(env, [path], ROWS)
    finally:
        stop(consumer)


def test_rolling_restart_during_uploads(
    cluster: KafkaCluster, env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "consumer.log"
    consumer = start_cli(env, log, "consume")
    paths = []
    try:
        # Topics are created with all three nodes up: with one down, a topic of 3 replicas
        # cannot be created (INVALID_REPLICATION_FACTOR), and the command stops.
        wait_for(lambda: "assigned partition" in log.read_text(), 120, "the consumer's topics")
        for node in cluster.nodes:
            path = _sample(tmp_path, ROLLING_ROWS, seed=50 + node.node_id)
            publisher = start_cli(env, tmp_path / "publish.log", "publish", str(path))
            cluster.stop_node(node.node_id)
            cluster.start_node(node.node_id)
            assert publisher.wait(timeout=300) == 0, (tmp_path / "publish.log").read_text()
            wait_for(lambda: cluster.fully_replicated(env["METERPIPE_TOPIC"]), 120, "in sync")
            paths.append(path)
        _assert_counted_once(env, paths, ROLLING_ROWS * len(paths))
    finally:
        stop(consumer)
