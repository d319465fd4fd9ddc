"""API keys: made here, kept in the store as SHA-256 hashes, checked by the HTTP API.

A key is shown once, when created. Scopes: `upload` sends files, `read` reads uploads,
totals and periods, `admin` may do both and change billing periods.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from typing import Literal, get_args

from consumers.store import TotalsStore
from meterpipe.errors import ConfigError

__all__ = ["SCOPES", "Scope", "create_key", "grants", "hash_key"]

Scope = Literal["upload", "read", "admin"]
SCOPES: tuple[Scope, ...] = get_args(Scope)
KEY_PREFIX = "mpk_"
KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def hash_key(key: str) -> str:
    """What the store keeps of a key: its SHA-256, hex."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def grants(scopes: Iterable[str], needed: Scope) -> bool:
    """True if a key with `scopes` may do what needs `needed` (admin may do everything)."""
    held = set(scopes)
    return needed in held or "admin" in held


def create_key(store: TotalsStore, name: str, scopes: Iterable[str]) -> str:
    """Make a key named `name` with `scopes`, store its hash, and return the key itself."""
    if not KEY_NAME.fullmatch(name):
        raise ConfigError(
            f"{name!r} is not a key name: letters, digits, '.', '_' or '-', at most 64"
        )
    chosen = set(scopes)
    if not chosen or chosen - set(SCOPES):
        raise ConfigError(f"scopes must be among {', '.join(SCOPES)}")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    if not store.create_key(name, hash_key(key), [s for s in SCOPES if s in chosen]):
        raise ConfigError(f"a key named {name!r} exists already; revoke it or pick another name")
    return key
