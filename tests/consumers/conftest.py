"""PostgreSQL fixtures: a fresh schema per test on the server CI always provides."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import psycopg
import pytest

POSTGRES_URL = os.environ.get(
    "METERPIPE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A store URL whose search_path is a new, empty schema, dropped after the test."""
    schema = f"t_{uuid.uuid4().hex}"
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {POSTGRES_URL} (set METERPIPE_TEST_POSTGRES_URL): "
            f"{exc}"
        )
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        separator = "&" if "?" in POSTGRES_URL else "?"
        yield f"{POSTGRES_URL}{separator}options={quote(f'-csearch_path={schema}')}"
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
