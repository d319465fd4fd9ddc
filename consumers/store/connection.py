"""A psycopg connection the shared `?`-placeholder queries can use, reopened after it breaks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from meterpipe.errors import StoreError

__all__ = ["PostgresConnection"]

CONNECT_TIMEOUT_S = 10


class PostgresConnection:
    """One autocommit connection to `url`; a broken one is replaced on next use.

    The consumer retries a batch after a StoreError on the same store object, so a lost
    server connection must heal here rather than stay broken for the process's life.
    A process frozen inside its batch transaction (GC pause, SIGSTOP) keeps its
    partitions' offset rows locked, and the member that took them over waits on those
    locks: `idle_in_transaction_timeout_s` has the server end such a session, which
    releases them (the frozen process then finds its connection gone and its batch fenced).
    """

    def __init__(self, url: str, idle_in_transaction_timeout_s: float | None = None) -> None:
        self._url = url
        self._idle_timeout_s = idle_in_transaction_timeout_s
        self._connection: psycopg.Connection[TupleRow] | None = None

    def connect(self) -> psycopg.Connection[TupleRow]:
        """The live connection, opening a new one if there is none or it broke."""
        if self._connection is None or self._connection.broken:
            self.close()
            connection = psycopg.connect(
                self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
            )
            if self._idle_timeout_s is not None:
                # SET takes no bind parameters; set_config does (milliseconds, 0 = never).
                connection.execute(
                    "SELECT set_config('idle_in_transaction_session_timeout', %s, false)",
                    (str(round(self._idle_timeout_s * 1000)),),
                )
            self._connection = connection
        return self._connection

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> psycopg.Cursor[TupleRow]:
        """Run one statement written with `?` placeholders (none of our SQL has a literal ?)."""
        try:
            return self.connect().execute(sql.replace("?", "%s"), parameters)
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL store: {exc}") from exc

    def close(self) -> None:
        """Close the connection, if one is open."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
