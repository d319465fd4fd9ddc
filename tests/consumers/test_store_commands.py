"""`meterpipe store migrate|stats|prune` and --store-url, on both store backends."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import psycopg
import pytest
from click.testing import CliRunner

from consumers.store import StoredOffset, TotalsFolder, open_store
from consumers.store.migrations import POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS
from meterpipe.cli import main
from meterpipe.settings import StoreSettings
from schemas.uploads import UploadRecord, utc_timestamp
from tests.consumers.test_store import _batch, _events
from tests.processes import METERPIPE

DAY_S = 86_400


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> StoreSettings:
    """An empty store of each kind, named by settings (URL unset means SQLite)."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    return StoreSettings(data_dir=tmp_path / "data", store_url=url)


def _store_args(settings: StoreSettings) -> list[str]:
    """Command-line options naming the store (never the env var: the options are tested)."""
    args = ["--data-dir", str(settings.data_dir)]
    return [*args, "--store-url", settings.store_url] if settings.store_url else args


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), env={"METERPIPE_STORE_URL": None})
    assert result.exit_code == 0, result.output
    return result.output


def _stats(settings: StoreSettings) -> dict[str, Any]:
    stats: dict[str, Any] = json.loads(_invoke("store", "stats", "--json", *_store_args(settings)))
    return stats


def _execute(settings: StoreSettings, sql: str, *params: Any) -> None:
    """Change the store straight in the database (`?` placeholders, on either backend)."""
    if settings.store_url:
        with psycopg.connect(settings.store_url, autocommit=True) as db:
            db.execute(sql.replace("?", "%s"), params)
    else:
        with contextlib.closing(sqlite3.connect(settings.sqlite_path)) as lite, lite:
            lite.execute(sql, params)


def _age_first_batch(settings: StoreSettings, event_ids: list[str], seconds: int) -> None:
    """Make the first batch's dedupe entries (`event_ids`) look first seen `seconds` ago."""
    cutoff = int(time.time()) - seconds
    if settings.store_url:
        _execute(settings, "UPDATE seen_events SET seen_at = ? WHERE event_id = ANY(?)",
                 cutoff, event_ids)  # fmt: skip
    else:  # SQLite keeps a batch's entries as one block
        _execute(settings, "UPDATE seen_blocks SET seen_at = ?"
                 " WHERE first_row = (SELECT min(first_row) FROM seen_blocks)", cutoff)  # fmt: skip


def _finish_upload(settings: StoreSettings, reference: str, seconds_ago: int) -> None:
    finished = utc_timestamp(time.time() - seconds_ago)
    _execute(settings, "UPDATE uploads SET status = 'Done', finished_at = ? WHERE reference = ?",
             finished, reference)  # fmt: skip


def test_stats_count_the_store_and_prune_forgets_only_old_entries(backend: StoreSettings) -> None:
    store = open_store(backend)
    try:
        store.create_upload(UploadRecord(reference="u1", name="f.csv", upload_key="k"))
        old = _events(("old-1", 2, "1", True), ("old-2", 3, "2", True))
        store.apply_batch(_batch(old, None, 2))
        new = _events(("new", 4, "3", True), ("new", 5, "3", True))
        store.apply_batch(_batch(new, StoredOffset("log-1", 2), 4))
        _age_first_batch(backend, ["old-1", "old-2"], 40 * DAY_S)

        stats = _stats(backend)
        rows = {name: table["rows"] for name, table in stats["tables"].items()}
        if backend.store_url:
            assert rows == {"seen_events": 3, "settled_rows": 1, "totals": 1, "uploads": 1}
        else:  # SQLite holds each batch's totals as one pending blob until folded
            expected = {"seen_events": 3, "settled_rows": 1, "totals": 0, "uploads": 1}
            assert rows == {**expected, "total_deltas": 2}
            assert isinstance(store, TotalsFolder)
            store.fold_totals()
            folded = {name: table["rows"] for name, table in _stats(backend)["tables"].items()}
            assert folded == {**expected, "totals": 1, "total_deltas": 0}
        assert stats["tables"]["seen_events"]["bytes"] > 0
        assert stats["uploadsByStatus"] == {"Processing": 1}
        assert 40 * DAY_S <= stats["dedupe"]["oldestAgeSeconds"] < 40 * DAY_S + 600
        assert stats["dedupe"]["retentionDays"] == 35

        args = _store_args(backend)
        upload = json.loads(_invoke("uploads", "show", "u1", "--json", *args))
        assert (upload["accepted"], upload["duplicates"]) == (3, 1)
        (total,) = json.loads(_invoke("totals", "--json", *args))
        assert (total["events"], total["quantity"]) == (3, "6")
        assert "pruned 0 " in _invoke("store", "prune", "--retention-days", "41", *args)
        assert "pruned 2 " in _invoke("store", "prune", *args)
        after = _stats(backend)
        assert after["tables"]["seen_events"]["rows"] == 1
        assert after["dedupe"]["oldestAgeSeconds"] < 600
        # Settled rows (here u1's duplicate) go once their upload finished before the window.
        _finish_upload(backend, "u1", 0)
        _invoke("store", "prune", *args)
        assert _stats(backend)["tables"]["settled_rows"]["rows"] == 1
        _finish_upload(backend, "u1", 40 * DAY_S)
        _invoke("store", "prune", *args)
        assert _stats(backend)["tables"]["settled_rows"]["rows"] == 0

        # What was pruned is forgotten (counts again); what was kept still dedupes.
        again = _events(("old-1", 6, "1", True), ("new", 7, "3", True))
        outcome = store.apply_batch(_batch(again, StoredOffset("log-1", 4), 6))
        assert (outcome.accepted, outcome.duplicates) == (1, 1)
    finally:
        store.close()


def test_migrate_is_idempotent_and_safe_for_processes_starting_together(
    backend: StoreSettings,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("METERPIPE_")}
    command = [*METERPIPE, "store", "migrate", *_store_args(backend)]
    together = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)]
    together.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True))
    outputs = [process.communicate(timeout=120)[0] for process in together]
    assert [process.returncode for process in together] == [0, 0]
    version = len(POSTGRES_MIGRATIONS if backend.store_url else SQLITE_MIGRATIONS)
    assert outputs == [f"schema version {version}\n"] * 2
    assert _invoke("store", "migrate", *_store_args(backend)) == f"schema version {version}\n"
    if backend.store_url:
        # The option, not a default, chose the store: the schema is in the test's own one.
        with psycopg.connect(backend.store_url) as db:
            (count,) = db.execute("SELECT count(*) FROM schema_version").fetchone() or (0,)
        assert count == version
        assert not backend.data_dir.exists()


def _commands(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None
        yield f"{prefix}{name}", command
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix}{name} ")


def test_every_command_that_opens_the_store_takes_store_url() -> None:
    store_commands = {
        name for name, command in _commands(main)
        if any(param.name == "data_dir" for param in command.params)
    }  # fmt: skip
    assert {"consume", "up", "publish", "uploads show", "totals", "store stats"} <= store_commands
    for name in store_commands:
        assert "--store-url" in _invoke(*name.split(), "--help"), name
