"""The publisher: its waits end early when the process stops or the broker is replaced, and
every delivery failure fails the flush."""

from __future__ import annotations

import threading
import time

import pytest

from meterpipe.broker import free_port
from meterpipe.errors import PublishError
from meterpipe.kafka_config import producer_config
from meterpipe.settings import KafkaSettings
from producers.publisher import BrokerReplaced, EventPublisher, PublishCancelled


def _unacknowledged(stop: threading.Event, replaced: threading.Event) -> EventPublisher:
    """A publisher holding one message no broker will ever acknowledge (nothing listens)."""
    config = producer_config(KafkaSettings(), f"127.0.0.1:{free_port()}")
    publisher = EventPublisher(config, "events", stop, replaced)
    publisher.send(["key"], [b"value"])
    return publisher


@pytest.mark.parametrize("which", ["stop", "replaced"])
def test_flush_waiting_for_a_lost_broker_ends_at_once(which: str) -> None:
    stop, replaced = threading.Event(), threading.Event()
    publisher = _unacknowledged(stop, replaced)
    (stop if which == "stop" else replaced).set()
    expected = BrokerReplaced if which == "replaced" else PublishCancelled
    started = time.monotonic()
    with pytest.raises(PublishCancelled) as raised:
        publisher.flush()
    # Without the event, flush would wait for the 120 s message timeout.
    assert time.monotonic() - started < 5
    assert type(raised.value) is expected
    publisher.reset()


def test_a_message_that_is_never_acknowledged_fails_the_flush() -> None:
    # Only failed deliveries are reported by librdkafka: this one must still surface.
    kafka = KafkaSettings(client_overrides={"message.timeout.ms": "300"})
    publisher = EventPublisher(producer_config(kafka, f"127.0.0.1:{free_port()}"), "events")
    publisher.send(["key"], [b"value"])
    with pytest.raises(PublishError, match="1 delivery failure"):
        publisher.flush()
