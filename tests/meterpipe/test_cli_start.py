"""The commands people run to look (`--help`, `uploads`, `totals`) load no heavy library.

They answer at once because they import neither pydantic, a dataframe library nor a Kafka
client (docs/performance.md, "CLI start"). Each runs here in an interpreter of its own, on a
store holding an upload and its totals, and the modules it loaded are read from `sys.modules`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from consumers.store import BatchOutcome, TotalsFolder, UploadRecord, open_store
from meterpipe.settings import StoreSettings
from tests.postgres import fresh_schema, schema_url

HEAVY = ["confluent_kafka", "numpy", "polars", "pyarrow", "pydantic"]
WEB = ["fastapi", "starlette", "uvicorn"]  # what only the commands serving HTTP need
LOADED = (
    "import json, sys\n"
    "from meterpipe.cli import main\n"
    "try:\n"
    "    main(sys.argv[1:])\n"
    "except SystemExit as exit:\n"
    "    assert not exit.code, exit.code\n"
    "loaded = {name.split('.')[0] for name in sys.modules}\n"
    f"print(json.dumps(sorted(loaded & set({HEAVY + WEB!r}))))\n"
)
QUANTITIES = ("1.25", "2.5")  # one account's two events
TOTAL = str(sum(Decimal(quantity) for quantity in QUANTITIES))


def _run(*args: str) -> tuple[str, list[str]]:
    """What `meterpipe ARGS` printed, and the heavy and HTTP libraries its process loaded."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("METERPIPE_")}
    done = subprocess.run(
        [sys.executable, "-c", LOADED, *args],
        env=env, capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    printed, _, loaded = done.stdout.rstrip("\n").rpartition("\n")
    heavy: list[str] = json.loads(loaded)
    return printed, heavy


@pytest.fixture(params=["sqlite", "postgres"])
def store_options(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[str]]:
    """The options naming a store that holds upload `u1` and its folded totals."""
    if request.param == "sqlite":
        yield _seeded(StoreSettings(data_dir=tmp_path), ["--data-dir", str(tmp_path)])
        return
    with fresh_schema() as schema:
        url = schema_url(schema)
        yield _seeded(StoreSettings(data_dir=tmp_path, store_url=url), ["--store-url", url])


def _seeded(settings: StoreSettings, options: list[str]) -> list[str]:
    store = open_store(settings)
    try:
        store.create_upload(UploadRecord(reference="u1", name="usage.csv", upload_key="k"))
        events = pl.DataFrame({
            "eventId": ["e1", "e2"], "uploadRef": ["u1", "u1"], "rowNumber": [2, 3],
            "accountId": ["acct", "acct"], "pricingUnit": ["API", "API"],
            "customUnit": [None, None], "quantity": list(QUANTITIES), "billable": [True, True],
            "day": [dt.date(2026, 10, 1)] * 2,
        }, schema_overrides={"customUnit": pl.String})  # fmt: skip
        provenance = pl.DataFrame(schema={"uploadRef": pl.String, "rowNumber": pl.Int64})
        store.apply_batch(BatchOutcome("usage", "log-1", events, provenance, {0: (None, 2)}))
        if isinstance(store, TotalsFolder):
            store.fold_totals()
    finally:
        store.close()
    return options


def test_help_loads_no_heavy_library() -> None:
    printed, heavy = _run("--help")
    assert "totals" in printed
    assert heavy == []


def test_uploads_and_totals_load_no_heavy_library(store_options: list[str]) -> None:
    printed, heavy = _run("uploads", "--json", *store_options)
    assert [upload["reference"] for upload in json.loads(printed)] == ["u1"]
    assert heavy == []
    printed, heavy = _run("uploads", *store_options)
    assert "usage.csv" in printed
    assert heavy == []
    printed, heavy = _run("totals", "--json", *store_options)
    assert [(row["accountId"], row["quantity"]) for row in json.loads(printed)] == [("acct", TOTAL)]
    assert heavy == []
    # The period's state is judged by the period settings: only this form loads pydantic.
    printed, heavy = _run("totals", "--period", "2026-10", *store_options)
    assert "period 2026-10" in printed
    assert TOTAL in printed
    assert heavy == ["pydantic"]


@pytest.mark.parametrize("command", ["publish", "consume", "broker"])
def test_commands_serving_no_http_load_no_http_framework(command: str) -> None:
    printed, loaded = _run(command, "--help")
    assert f"meterpipe {command}" in printed
    assert not set(loaded) & set(WEB)
