"""Stores for the benchmark's consume scenarios: a data dir, or a fresh PostgreSQL schema.

Every scenario gets a store of its own, so one scenario's dedupe state never makes the
next one look faster (or slower), and the PostgreSQL schema is dropped afterwards.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import polars as pl
import psycopg

from consumers.store import open_store
from consumers.store.sqlite import SqliteStore
from meterpipe.errors import ConfigError
from meterpipe.settings import StoreSettings

__all__ = ["prefill_event_ids", "scenario_store"]

PREFILL_CHUNK = 1_000_000


@contextlib.contextmanager
def scenario_store(data_dir: Path, store_url: str | None) -> Iterator[StoreSettings]:
    """The store settings of one scenario: the data dir's SQLite, or a new schema at the URL."""
    if store_url is None:
        yield StoreSettings(data_dir=data_dir)
        return
    schema = f"meterpipe_bench_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(store_url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise ConfigError(f"cannot reach the --store-url database: {exc}") from exc
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            separator = "&" if "?" in store_url else "?"
            url = f"{store_url}{separator}options={quote(f'-csearch_path={schema}')}"
            yield StoreSettings(data_dir=data_dir, store_url=url)
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def prefill_event_ids(settings: StoreSettings, count: int) -> None:
    """Store `count` synthetic eventIds, as if months of earlier uploads had been counted."""
    store = open_store(settings)
    if not isinstance(store, SqliteStore):
        store.close()
        raise ConfigError("--prefill seeds the SQLite store only")
    try:
        for start in range(0, count, PREFILL_CHUNK):
            ids = pl.int_range(start, min(count, start + PREFILL_CHUNK)).cast(pl.String)
            store.record_event_ids(pl.select(pl.concat_str(pl.lit("earlier-"), ids)).to_series())
    finally:
        store.close()
