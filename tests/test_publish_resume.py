"""`meterpipe publish FILE` killed mid-file, then run again the same way, without --reference."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from meterpipe.sample_data import SampleSpec, write_sample_file
from tests.groundtruth import as_comparable, expected_totals
from tests.processes import (
    SLOW_PRODUCER,
    all_final,
    run_cli,
    start_cli,
    totals,
    uploads,
    wait_for,
)

pytestmark = pytest.mark.slow

ROWS = 20_000


@pytest.mark.usefixtures("consumer")
def test_publish_killed_mid_file_is_resumed_by_publishing_the_file_again(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    """The second run takes the stuck upload over instead of being its duplicate."""
    path = tmp_path / "usage.csv"
    write_sample_file(path, SampleSpec(rows=ROWS, seed=41, accounts=200))
    slow = {**pipeline_env, "METERPIPE_CLIENT_OVERRIDES": SLOW_PRODUCER}
    killed = start_cli(slow, tmp_path / "publish.log", "publish", str(path))
    try:
        wait_for(
            lambda: [u for u in uploads(pipeline_env) if u["accepted"]], 120, "first events counted"
        )
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    (stuck,) = uploads(pipeline_env)
    assert stuck["status"] == "Processing"
    assert stuck["accepted"] + stuck["duplicates"] < ROWS, "the kill did not land mid-file"

    again = run_cli(pipeline_env, "publish", str(path), "--json")
    (resumed,) = json.loads(again.stdout)
    assert (resumed["reference"], resumed["duplicateOf"]) == (stuck["reference"], None)
    # Still one upload: no duplicate was recorded, and the stuck one ends Done.
    (upload,) = wait_for(lambda: all_final(pipeline_env, 1), 120, "the upload Done")
    assert upload["status"] == "Done"
    assert upload["accepted"] + upload["duplicates"] == upload["records"] == ROWS
    assert as_comparable(totals(pipeline_env)) == expected_totals(path)
