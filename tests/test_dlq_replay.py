"""Dead letters a user can act on: list them, fix the cause, replay them, exactly once.

June is closed after the file was published, so its events are dead-lettered at consume
time (`period_closed`). A replay while June is still closed changes nothing and adds no
second dead letter; after `periods hold 2026-06` a replay makes them count, and a further
replay is only a redelivery. Totals are checked against ground truths computed from the
CSV (without June, then whole).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from meterpipe.sample_data import SampleSpec, write_sample_file
from tests.groundtruth import as_comparable, expected_totals, without_month
from tests.postgres import ON_EITHER_STORE
from tests.processes import (
    all_final,
    hold_and_replay,
    run_cli,
    start_cli,
    stop,
    totals,
    uploads,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.both_brokers, ON_EITHER_STORE]


def _letters(env: dict[str, str]) -> list[dict[str, Any]]:
    listed = run_cli(env, "dlq", "list", "--reason", "period_closed", "--json").stdout
    result: list[dict[str, Any]] = json.loads(listed)
    return result


def _redelivered(log: Path) -> int:
    """Events the consumer found it had already settled, from its JSON log lines."""
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return sum(line.get("redelivered", 0) for line in lines)


def test_dead_letters_replayed_after_the_cause_is_fixed_count_exactly_once(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    # No duplicate eventIds: which copy of an id wins must not depend on June's fate.
    source = tmp_path / "usage.csv"
    write_sample_file(source, SampleSpec(rows=1_500, seed=21, accounts=20, duplicate_share=0))
    june = without_month(source, tmp_path / "without-june.csv", "2026-06")
    assert june > 0
    run_cli(pipeline_env, "publish", str(source))
    run_cli(pipeline_env, "periods", "close", "2026-06")
    log = tmp_path / "consumer.log"
    consumer = start_cli(pipeline_env, log, "consume")
    try:
        (upload,) = wait_for(lambda: all_final(pipeline_env, 1), 120, "upload Done")
        assert upload["rejected"] == june
        assert as_comparable(totals(pipeline_env)) == expected_totals(tmp_path / "without-june.csv")
        letters = _letters(pipeline_env)
        assert len(letters) == june
        assert {letter["upload"] for letter in letters} == {upload["reference"]}
        assert all(letter["row"] is not None and letter["eventId"] for letter in letters)

        # Still closed: refused again, but neither counted nor dead-lettered twice.
        run_cli(pipeline_env, "dlq", "replay", "--reason", "period_closed")
        wait_for(lambda: _redelivered(log) >= june, 120, "the replay consumed")
        assert len(_letters(pipeline_env)) == june

        after = hold_and_replay(pipeline_env, "2026-06", june)
        assert after["accepted"] == 1_500 - after["duplicates"]
        assert as_comparable(totals(pipeline_env)) == expected_totals(source)

        # Once more: everything is a redelivery now; nothing moves.
        run_cli(pipeline_env, "dlq", "replay", "--reason", "period_closed")
        wait_for(lambda: _redelivered(log) >= 2 * june, 120, "the second replay consumed")
        assert uploads(pipeline_env) == [after]
        assert as_comparable(totals(pipeline_env)) == expected_totals(source)
    finally:
        stop(consumer)
