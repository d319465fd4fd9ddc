"""What the consumer does in librdkafka's callbacks, called as librdkafka calls them, and
when it folds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from consumers.consumer import UsageConsumer, _InHand
from consumers.store.sqlite import SqliteStore
from meterpipe.metrics import PipelineMetrics
from meterpipe.settings import load_settings
from schemas.codec import make_codec
from tests.consumers.raw_batches import raw_batch

TOPIC = "usage"
LAG = "meterpipe_consumer_lag"


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def consumer(tmp_path: Path, registry: CollectorRegistry) -> Iterator[UsageConsumer]:
    """A group member that never connects: the callbacks under test need no broker."""
    settings = load_settings(topic=TOPIC, data_dir=tmp_path)
    store = SqliteStore.open(tmp_path / "store.sqlite3")
    codec = make_codec(None, f"{TOPIC}-value")
    yield UsageConsumer(settings, "127.0.0.1:1", store, codec, PipelineMetrics(registry))
    store.close()


def _stats(lags: dict[int, int]) -> str:
    """librdkafka's statistics JSON, reduced to what the consumer reads (-1: the topic total)."""
    partitions = {str(p): {"consumer_lag": lag} for p, lag in {**lags, -1: -1}.items()}
    return json.dumps({"topics": {TOPIC: {"partitions": partitions}}})


def test_revoked_partitions_lose_their_lag_gauge(
    consumer: UsageConsumer, registry: CollectorRegistry
) -> None:
    def lag(partition: int) -> float | None:
        return registry.get_sample_value(LAG, {"topic": TOPIC, "partition": str(partition)})

    consumer._on_stats(_stats({0: 5, 1: 7, 2: 9}))
    assert [lag(p) for p in (0, 1, 2)] == [5, 7, 9]
    consumer._on_rebalance("revoke", [0, 2])
    assert [lag(p) for p in (0, 1, 2)] == [None, 7, None]
    # A partition revoked before any statistics named it is no error.
    consumer._on_rebalance("lost", [4])


@pytest.mark.parametrize(
    ("unfolded", "in_hand", "idle", "starts"),
    [
        (20, False, False, True),  # the count is reached: fold
        (20, True, False, False),  # a batch is waiting, maybe an upload's last: not yet
        (39, True, False, False),
        (40, True, False, True),  # twice the count: fold even so
        (1, True, True, True),  # an idle topic always folds
        (1, False, False, False),
    ],
)
def test_a_fold_waits_while_a_batch_is_in_hand_up_to_twice_its_count(
    consumer: UsageConsumer, unfolded: int, in_hand: bool, idle: bool, starts: bool
) -> None:
    consumer._folding = False
    consumer._unfolded = unfolded  # batches committed since the last fold (default count: 20)
    if in_hand:
        consumer._in_hand = _InHand(raw_batch([], [], [], []), Future())
    consumer._fold_if_due(idle=idle)
    assert (consumer._unfolded == 0) is starts  # a fold that starts counts afresh
