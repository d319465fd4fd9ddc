"""`locate_store` finds the store where the settings say it is, from every source."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from meterpipe.errors import ConfigError
from meterpipe.settings import load_settings
from meterpipe.store_location import StoreLocation, locate_store

URL = "postgresql://meter@db.example:5432/usage"


@pytest.fixture(autouse=True)
def _no_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No METERPIPE_* variable of the machine running the tests takes part."""
    for name in list(os.environ):
        if name.upper().startswith("METERPIPE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _both(data_dir: Path | None = None) -> tuple[StoreLocation, StoreLocation]:
    """What locate_store finds, and what the settings classes resolve, for one option value."""
    store = load_settings(data_dir=data_dir).store
    return locate_store(data_dir), StoreLocation(store.data_dir, store.store_url)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, StoreLocation(Path("data"), None)),
        ({"METERPIPE_CONFIG": "absent.toml"}, StoreLocation(Path("data"), None)),
        (
            {"METERPIPE_DATA_DIR": "/var/lib/meterpipe", "meterpipe_store_url": URL},
            StoreLocation(Path("/var/lib/meterpipe"), URL),
        ),
    ],
    ids=["defaults", "missing-toml-file", "env-vars-in-any-letter-case"],
)
def test_env_vars_and_defaults(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: StoreLocation
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    found, settings = _both()
    assert found == settings == expected
    assert found.sqlite_path == load_settings().store.sqlite_path


def test_toml_file_below_env_vars_and_an_option_above_both(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "meterpipe.toml"
    config.write_text(f'data_dir = "from-toml"\nstore_url = "{URL}"\n', encoding="utf-8")
    monkeypatch.setenv("METERPIPE_CONFIG", str(config))
    found, settings = _both()
    assert found == settings == StoreLocation(Path("from-toml"), URL)
    monkeypatch.setenv("METERPIPE_DATA_DIR", "from-env")
    found, settings = _both()
    assert found == settings == StoreLocation(Path("from-env"), URL)
    found, settings = _both(Path("from-option"))
    assert found == settings == StoreLocation(Path("from-option"), URL)


def test_an_unreadable_toml_file_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("data_dir = \n", encoding="utf-8")
    monkeypatch.setenv("METERPIPE_CONFIG", str(config))
    with pytest.raises(ConfigError, match=r"broken\.toml"):
        locate_store()
