"""The Confluent Schema Registry wire format through the whole pipeline, with a real registry.

`meterpipe publish`, `consume` and `dlq replay` run with `METERPIPE_REGISTRY_URL` pointing at
Apicurio Registry's Confluent-compatible API (`tests.schema_registry`). June is closed after
the file is published and before it is consumed, so its events are dead-lettered; once June is
held again, a replay makes them count. Every event on the topic, and every dead letter, is
framed with the id the registry assigned to the topic's `-value` subject, the registry holds
the UsageEvent schema under it, and the totals equal ground truths computed from the CSV.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meterpipe.sample_data import SampleSpec, write_sample_file
from schemas.versions import CURRENT
from tests.groundtruth import as_comparable, expected_totals, without_month
from tests.processes import all_final, hold_and_replay, run_cli, start_cli, stop, totals, wait_for
from tests.schema_registry import RegistryServer, running_registry
from tests.topics import read_topic

pytestmark = [pytest.mark.slow]

ROWS = 3_000


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """Apicurio Registry, in memory, for this module."""
    with running_registry(tmp_path_factory.mktemp("registry")) as server:
        yield server


def _framings(bootstrap: str, topic: str, count: int) -> set[bytes]:
    """The distinct first five bytes of the `count` messages on `topic`."""
    messages = read_topic(bootstrap, topic, count, settle_s=1.0)
    assert len(messages) == count
    return {bytes(message.value() or b"")[:5] for message in messages}


def _registered_schema(registry: RegistryServer, header: bytes) -> Any:
    """The schema the registry holds under the id in `header`, parsed."""
    return json.loads(registry.get(f"/schemas/ids/{int.from_bytes(header[1:], 'big')}")["schema"])


def test_registry_framed_events_are_counted_and_their_dead_letters_replayed(
    pipeline_env: dict[str, str], registry: RegistryServer, tmp_path: Path
) -> None:
    env = {**pipeline_env, "METERPIPE_REGISTRY_URL": registry.url}
    # No duplicate eventIds: which copy of an id wins must not depend on June's fate.
    source = tmp_path / "usage.csv"
    write_sample_file(source, SampleSpec(rows=ROWS, seed=33, accounts=40, duplicate_share=0))
    june = without_month(source, tmp_path / "without-june.csv", "2026-06")
    assert june > 0
    run_cli(env, "publish", str(source))
    run_cli(env, "periods", "close", "2026-06")

    subject = f"{env['METERPIPE_TOPIC']}-value"
    assert subject in registry.subjects()
    header = b"\x00" + registry.latest_id(subject).to_bytes(4, "big")
    bootstrap = env["METERPIPE_BOOTSTRAP_SERVERS"]
    assert _framings(bootstrap, env["METERPIPE_TOPIC"], ROWS) == {header}
    assert _registered_schema(registry, header) == json.loads(CURRENT.text)

    consumer = start_cli(env, tmp_path / "consumer.log", "consume")
    try:
        (upload,) = wait_for(lambda: all_final(env, 1), 120, "upload Done")
        assert (upload["status"], upload["rejected"]) == ("Done", june)
        assert as_comparable(totals(env)) == expected_totals(tmp_path / "without-june.csv")
        # A dead letter keeps the message as it was: framed for the registry.
        assert _framings(bootstrap, env["METERPIPE_DLQ_TOPIC"], june) == {header}

        after = hold_and_replay(env, "2026-06", june)
        assert (after["status"], after["accepted"]) == ("Done", ROWS)
        assert as_comparable(totals(env)) == expected_totals(source)
    finally:
        stop(consumer)
