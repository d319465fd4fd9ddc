"""Shared fixtures: one embedded broker per session, and per-test names and directories."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from meterpipe.broker import EmbeddedBroker
from tests.pgserver import close_shared_server
from tests.postgres import on_fresh_schema
from tests.processes import start_cli, stop


@pytest.fixture(scope="session", autouse=True)
def _own_postgres() -> Iterator[None]:
    """Stops the PostgreSQL server this test process started, if any, when the session ends."""
    yield
    close_shared_server()


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """The real embedded Kafka-protocol broker, on a free loopback port."""
    with EmbeddedBroker() as embedded:
        yield embedded


@pytest.fixture
def pipeline_env(
    broker: EmbeddedBroker, tmp_path: Path, request: pytest.FixtureRequest
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
