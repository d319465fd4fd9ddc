"""`meterpipe periods` refuses a period that names no month, and keeps working after it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.processes import run_cli


@pytest.mark.parametrize("period", ["0000-01", "9999-12", "2026-13", "２０２６-07"])
def test_a_period_naming_no_month_is_refused_and_nothing_is_stored(
    period: str, tmp_path: Path
) -> None:
    env = {**os.environ, "METERPIPE_DATA_DIR": str(tmp_path)}
    refused = run_cli(env, "periods", "close", period, check=False)
    assert refused.returncode == 2
    assert repr(period) in refused.stderr
    assert "YYYY-MM" in refused.stderr
    run_cli(env, "periods", "close", "2026-7")  # a one-digit month is padded
    listed = json.loads(run_cli(env, "periods", "list", "--json").stdout)
    assert [(row["period"], row["state"]) for row in listed] == [("2026-07", "closed")]
