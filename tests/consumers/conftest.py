"""PostgreSQL fixtures: a fresh schema per test on the suite's own server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.postgres import fresh_schema, schema_url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A store URL whose search_path is a new, empty schema, dropped after the test."""
    with fresh_schema() as schema:
        yield schema_url(schema)
