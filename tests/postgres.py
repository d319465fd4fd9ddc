"""PostgreSQL for tests: the server CI always provides, and a fresh schema per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, quote, urlsplit

import psycopg
import pytest

POSTGRES_URL = os.environ.get(
    "METERPIPE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def schema_url(schema: str, application_name: str | None = None) -> str:
    """A store URL whose search_path is `schema`, optionally naming the client."""
    params = {"options": f"-csearch_path={schema}"}
    if application_name is not None:
        params["application_name"] = application_name
    query = "&".join(f"{key}={quote(value)}" for key, value in params.items())
    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}{query}"


def schema_of(url: str) -> str:
    """The schema a `schema_url` points at."""
    options = parse_qs(urlsplit(url).query)["options"][0]
    return options.removeprefix("-csearch_path=")


def admin_connection() -> psycopg.Connection[tuple[object, ...]]:
    """An autocommit connection to the test database; fails the test if there is none."""
    try:
        return psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {POSTGRES_URL} (set METERPIPE_TEST_POSTGRES_URL): "
            f"{exc}"
        )


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
