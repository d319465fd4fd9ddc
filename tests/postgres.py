"""PostgreSQL for tests: the suite's own server, and a fresh schema or database per test.

Also the consumer processes fault tests run on it, and the exactly-once checks they end with.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import psycopg
import pytest

from tests.groundtruth import as_comparable, expected_totals
from tests.pgserver import shared_server
from tests.processes import log_lines, start_cli, totals

Db = psycopg.Connection[Any]


def postgres_url() -> str:
    """The URL of this test process's own server (started on first use)."""
    return shared_server().url


def schema_url(
    schema: str, application_name: str | None = None, server_url: str | None = None
) -> str:
    """A store URL whose search_path is `schema`, optionally naming the client.

    On the suite's own server unless `server_url` names another (a test's dedicated one).
    """
    params = {"options": f"-csearch_path={schema}"}
    if application_name is not None:
        params["application_name"] = application_name
    query = "&".join(f"{key}={quote(value)}" for key, value in params.items())
    return f"{server_url or postgres_url()}?{query}"


def schema_of(url: str) -> str:
    """The schema a `schema_url` points at."""
    options = parse_qs(urlsplit(url).query)["options"][0]
    return options.removeprefix("-csearch_path=")


def admin_connection() -> psycopg.Connection[tuple[object, ...]]:
    """An autocommit superuser connection to the suite's server."""
    return psycopg.connect(postgres_url(), autocommit=True, connect_timeout=10)


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A new, empty schema's name, dropped (with everything in it) afterwards."""
    schema = f"t_{uuid.uuid4().hex}"
    with admin_connection() as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield schema
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextmanager
def on_fresh_schema(env: dict[str, str]) -> Iterator[dict[str, str]]:
    """`env` with its store on a fresh schema of the suite's server, clients named after it."""
    with fresh_schema() as schema:
        yield {**env, "METERPIPE_STORE_URL": schema_url(schema, application_name=schema)}


# Runs a test that uses `pipeline_env` twice: on SQLite, and on a fresh PostgreSQL schema.
ON_EITHER_STORE = pytest.mark.parametrize("pipeline_env", ["sqlite", "postgresql"], indirect=True)


@contextmanager
def fresh_database() -> Iterator[tuple[str, Callable[[], None]]]:
    """A new, empty database's URL and a function that locks every client out of it.

    Locking out (no new connections, current ones terminated) makes the store unreachable
    to processes already running, without touching the server other tests share.
    """
    name = f"t_{uuid.uuid4().hex}"

    def lock_out() -> None:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )

    with admin_connection() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield urlsplit(postgres_url())._replace(path=f"/{name}").geturl(), lock_out
        finally:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


class Member:
    """One `meterpipe consume` process, its log and its PostgreSQL client name."""

    def __init__(self, env: dict[str, str], directory: Path, name: str) -> None:
        store_url = env["METERPIPE_STORE_URL"]
        schema = schema_of(store_url)
        self.name = f"{schema}-{name}"
        self.log = directory / f"{name}.log"
        # The URL goes on the command line: that is what --store-url is for.
        server_url = urlsplit(store_url)._replace(query="").geturl()
        url = schema_url(schema, application_name=self.name, server_url=server_url)
        self.process = start_cli(env, self.log, "consume", "--store-url", url)

    def lines(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far."""
        return log_lines(self.log)

    def assignments(self, since: int = 0) -> list[tuple[datetime, int]]:
        """(time, partition) of each assignment logged after the first `since` lines."""
        return [
            (datetime.fromisoformat(line["time"]), line["partition"])
            for line in self.lines()[since:]
            if line["message"].startswith("assigned partition")
        ]

    def partitions(self) -> set[int]:
        """Its latest assignment: a rebalance logs one line per partition, all at once."""
        found = self.assignments()
        latest = max((when for when, _ in found), default=None)
        return {p for when, p in found if latest and latest - when < timedelta(seconds=1)}

    def logged(self, text: str) -> bool:
        return any(text in line["message"] for line in self.lines())

    def backend_state(self, db: Db) -> str | None:
        """Its PostgreSQL session's state: idle, active, idle in transaction, or None."""
        row = db.execute(
            "SELECT state FROM pg_stat_activity WHERE application_name = %s", (self.name,)
        ).fetchone()
        return row[0] if row else None


def one(db: Db, sql: str, *params: Any) -> Any:
    """The single value a query returns."""
    row = db.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def assert_exactly_once(
    db: Db, done: list[dict[str, Any]], files: list[Path], env: dict[str, str], rows: int
) -> None:
    """Every upload Done with all its `rows`, no eventId counted twice, totals exact."""
    for upload in done:
        assert upload["status"] == "Done", upload
        assert upload["accepted"] + upload["duplicates"] == upload["records"] == rows
    counted_twice = db.execute(
        "SELECT event_id FROM seen_events GROUP BY event_id HAVING count(*) > 1 LIMIT 5"
    ).fetchall()
    assert counted_twice == []
    expected = expected_totals(*files)
    seen = one(db, "SELECT count(*) FROM seen_events")
    assert seen == sum(upload["accepted"] for upload in done) == sum(r["events"] for r in expected)
    assert as_comparable(totals(env)) == expected
