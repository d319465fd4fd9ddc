"""API keys of the HTTP API, kept in the store: a name, its scopes, and a hash of the key.

The key itself is never stored: it is shown once when created, and a request's key is
found by its hash. SQL shared by both backends, over each one's connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from schemas.uploads import utc_now

__all__ = ["ApiKey", "KeyQueries"]


class _Executes(Protocol):
    """A connection that runs one `?`-placeholder statement."""

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Any:
        """Run one statement."""


Db = TypeVar("Db", bound=_Executes)


@dataclass(frozen=True)
class ApiKey:
    """A stored key, without the key: its name, scopes and creation time."""

    name: str
    scopes: tuple[str, ...]
    created_at: str

    def to_json(self) -> dict[str, Any]:
        """The stable JSON object of `meterpipe keys list --json`."""
        return {"name": self.name, "scopes": list(self.scopes), "createdAt": self.created_at}


def _key(row: Sequence[Any]) -> ApiKey:
    name, scopes, created_at = row
    return ApiKey(name=name, scopes=tuple(scopes.split()), created_at=created_at)


class KeyQueries(Generic[Db]):
    """Creating, finding, listing and revoking API keys."""

    _db: Db

    def create_key(self, name: str, key_hash: str, scopes: Sequence[str]) -> bool:
        """Store a new key; False if the name is taken."""
        cursor = self._db.execute(
            "INSERT INTO api_keys (name, key_hash, scopes, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (name) DO NOTHING",
            (name, key_hash, " ".join(scopes), utc_now()),
        )
        return bool(cursor.rowcount)

    def find_key(self, key_hash: str) -> ApiKey | None:
        """The key whose hash this is, or None."""
        row = self._db.execute(
            "SELECT name, scopes, created_at FROM api_keys WHERE key_hash = ?", (key_hash,)
        ).fetchone()
        return _key(row) if row else None

    def list_keys(self) -> list[ApiKey]:
        """Every key, by name."""
        rows = self._db.execute("SELECT name, scopes, created_at FROM api_keys ORDER BY name")
        return [_key(row) for row in rows.fetchall()]

    def revoke_key(self, name: str) -> bool:
        """Delete a key; False if no key has that name."""
        return bool(self._db.execute("DELETE FROM api_keys WHERE name = ?", (name,)).rowcount)

    def key_count(self) -> int:
        """How many keys exist."""
        return int(self._db.execute("SELECT count(*) FROM api_keys").fetchone()[0])
