"""Shared fixtures: brokers started once per test process, and per-test names and directories.

`broker` is the embedded broker, unless a test is marked `both_brokers`: then it runs once
on the embedded broker and once on a single-node Apache Kafka (KRaft) cluster, started
by the first test that needs it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from meterpipe.broker import EmbeddedBroker
from tests.kafka_cluster import KafkaCluster, running_cluster
from tests.pgserver import close_shared_server
from tests.postgres import on_fresh_schema
from tests.processes import start_cli, stop


@pytest.fixture(scope="session", autouse=True)
def _own_postgres() -> Iterator[None]:
    """Stops the PostgreSQL server this test process started, if any, when the session ends."""
    yield
    close_shared_server()


BROKERS = ("embedded", "kafka")


class Broker(Protocol):
    """What tests need of a broker, embedded or Apache Kafka."""

    @property
    def bootstrap_servers(self) -> str: ...


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `both_brokers` run on each broker (ids `[embedded]` and `[kafka]`)."""
    if "broker" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_brokers"):
        metafunc.parametrize("broker", BROKERS, indirect=True)


@pytest.fixture(scope="session")
def embedded_broker() -> Iterator[EmbeddedBroker]:
    """The real embedded Kafka-protocol broker, on a free loopback port."""
    with EmbeddedBroker() as embedded:
        yield embedded


@pytest.fixture(scope="session")
def apache_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """A single-node Apache Kafka cluster for this test process; fails (never skips) when
    Java or Maven is missing, saying what to install."""
    with running_cluster(tmp_path_factory.mktemp("apache-kafka")) as cluster:
        yield cluster


@pytest.fixture
def broker(request: pytest.FixtureRequest) -> Broker:
    """The broker this test runs on: embedded unless parametrized (`both_brokers`)."""
    kind = getattr(request, "param", "embedded")
    found: Broker = request.getfixturevalue(
        "apache_kafka" if kind == "kafka" else "embedded_broker"
    )
    return found


@pytest.fixture
def pipeline_env(
    broker: Broker, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[dict[str, str]]:
    """Environment for meterpipe processes: own topics, group, data dir, inbox and store.

    The store is SQLite in the data dir, or a fresh PostgreSQL schema for a test
    parametrized with `tests.postgres.ON_EITHER_STORE`.
    """
    tag = uuid.uuid4().hex[:10]
    env = {
        **os.environ,
        "METERPIPE_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "METERPIPE_TOPIC": f"usage-{tag}",
        "METERPIPE_DLQ_TOPIC": f"usage-dlq-{tag}",
        "METERPIPE_CONSUMER_GROUP": f"group-{tag}",
        "METERPIPE_DATA_DIR": str(tmp_path / "data"),
        "METERPIPE_INBOX": str(tmp_path / "inbox"),
        "METERPIPE_PARTITIONS": "3",
        "METERPIPE_MIN_FILE_AGE_S": "0.5",
        "METERPIPE_METRICS_PORT": "0",
        "METERPIPE_HTTP_PORT": "0",
        "PYTHONUNBUFFERED": "1",
    }
    if getattr(request, "param", "sqlite") == "sqlite":
        yield env
    else:
        with on_fresh_schema(env) as on_postgres:
            yield on_postgres


@pytest.fixture
def pg_pipeline_env(pipeline_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """`pipeline_env` on a fresh PostgreSQL schema (clients named after it) and 6 partitions."""
    with on_fresh_schema(pipeline_env) as env:
        yield {**env, "METERPIPE_PARTITIONS": "6"}


@pytest.fixture
def consumer(pipeline_env: dict[str, str], tmp_path: Path) -> Iterator[None]:
    """One `meterpipe consume` process for the test's topic and group."""
    process = start_cli(pipeline_env, tmp_path / "consumer.log", "consume")
    yield
    stop(process)
