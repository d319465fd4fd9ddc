"""API keys and upload options in both stores: the same SQL on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumers.store import open_store
from meterpipe.api_keys import create_key, hash_key
from meterpipe.errors import ConfigError
from meterpipe.settings import StoreSettings


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> StoreSettings:
    """An empty store of each kind."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    return StoreSettings(data_dir=tmp_path / "data", store_url=url)


def test_keys_are_found_by_hash_listed_and_revoked(backend: StoreSettings) -> None:
    store = open_store(backend)
    try:
        assert store.key_count() == 0
        key = create_key(store, "ci", ["read", "upload"])
        with pytest.raises(ConfigError, match="exists already"):
            create_key(store, "ci", ["admin"])
        found = store.find_key(hash_key(key))
        assert found is not None
        assert (found.name, found.scopes) == ("ci", ("upload", "read"))
        assert store.find_key(hash_key(key + "x")) is None
        assert [k.name for k in store.list_keys()] == ["ci"]
        assert store.revoke_key("ci")
        assert not store.revoke_key("ci")
        assert store.key_count() == 0
    finally:
        store.close()


def test_upload_options_are_kept(backend: StoreSettings) -> None:
    store = open_store(backend)
    try:
        store.record_upload_options("a", True, None)
        store.record_upload_options("b", None, "solvimon")
        assert store.upload_options("a") == (True, None)
        assert store.upload_options("b") == (None, "solvimon")
        assert store.upload_options("c") == (None, None)
    finally:
        store.close()
