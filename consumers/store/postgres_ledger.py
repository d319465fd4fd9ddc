"""The PostgreSQL store without the consumer's batch path: connecting, migrating, and the
records and reads every command shares (uploads, periods, keys, offsets, stats, totals).

Commands that only read or keep records open this, which needs nothing but psycopg; the
batch path (`PostgresStore`) needs polars.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from consumers.decimals import DECIMAL_SCALE, HALF
from consumers.store.connection import PostgresConnection
from consumers.store.migrations import POSTGRES_MIGRATIONS, apply_migrations
from consumers.store.queries import UploadQueries, totals_filter
from meterpipe.errors import StoreError

__all__ = ["PostgresLedger", "open_connection"]

# NUMERIC literal: multiplying by it is exact, where dividing may round.
UNITS_PER_ONE = f"1e{DECIMAL_SCALE}"


def open_connection(
    url: str, idle_in_transaction_timeout_s: float | None = None
) -> PostgresConnection:
    """A connection to `url` whose schema (the search_path's first) is brought up to date.

    `idle_in_transaction_timeout_s` is applied to every session (None: the server's).
    """
    connection = PostgresConnection(url, idle_in_transaction_timeout_s)
    try:
        live = connection.connect()
        with live.transaction(), live.cursor() as cur:
            # Serializes concurrent starters per schema; released when the transaction ends.
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('meterpipe:' || current_schema()))")
            apply_migrations(cur, POSTGRES_MIGRATIONS, "%s")
    except (psycopg.Error, StoreError) as exc:
        connection.close()
        raise StoreError(f"cannot open PostgreSQL store: {exc}") from exc
    return connection


class PostgresLedger(UploadQueries[PostgresConnection]):
    """Uploads, periods, keys, offsets, stats and totals as read, in one PostgreSQL schema."""

    @classmethod
    def open(cls, url: str) -> PostgresLedger:
        """Connect to `url` and bring its schema up to date."""
        return cls(open_connection(url))

    def total_rows(
        self, account: str | None, unit: str | None, period: str | None
    ) -> Sequence[tuple[Any, ...]]:
        """Raw per-day total rows, amounts split into the (hi, lo) halves SQLite stores."""
        where, params = totals_filter(account, unit, period)
        halves = ", ".join(
            f"div({column} * {UNITS_PER_ONE}, {HALF})::bigint,"
            f" mod({column} * {UNITS_PER_ONE}, {HALF})::bigint"
            for column in ("quantity", "billable_quantity")
        )
        return self._db.execute(
            f"SELECT account_id, pricing_unit, custom_unit, events, {halves}"
            f" FROM totals{where} ORDER BY account_id, pricing_unit, custom_unit",
            params,
        ).fetchall()
