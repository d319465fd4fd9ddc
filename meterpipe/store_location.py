"""Where the store is: the SQLite file in the data directory, or the store URL.

`StoreSettings` (`meterpipe.settings`) holds these among the store's other settings;
`locate_store` resolves just these two from the same sources (`meterpipe.config_sources`)
without pydantic, for the commands that only read the store and answer at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from meterpipe.config_sources import configured_value

__all__ = ["DEFAULT_DATA_DIR", "SQLITE_FILE_NAME", "StoreLocation", "locate_store"]

DEFAULT_DATA_DIR = Path("data")
SQLITE_FILE_NAME = "meterpipe.sqlite3"


@dataclass(frozen=True)
class StoreLocation:
    """The data directory and the store URL (None: the SQLite file in the data directory)."""

    data_dir: Path
    store_url: str | None

    @property
    def sqlite_path(self) -> Path:
        """The embedded SQLite store file."""
        return self.data_dir / SQLITE_FILE_NAME


def locate_store(data_dir: Path | None = None) -> StoreLocation:
    """The store the settings name; `data_dir`, when given, wins as a CLI option does."""
    configured_dir = configured_value("data_dir")
    store_url = configured_value("store_url")
    if data_dir is None:
        data_dir = DEFAULT_DATA_DIR if configured_dir is None else Path(configured_dir)
    return StoreLocation(data_dir, None if store_url is None else str(store_url))
