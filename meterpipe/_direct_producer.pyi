"""Types of the C extension producers/_direct_producer.c (see its header comment)."""

import logging
from collections.abc import Callable, Sequence

Header = tuple[str, str | bytes | None]

class DirectProducer:
    """A librdkafka producer for one topic: `library` is the path of librdkafka's shared
    object, `config` librdkafka's keys and values as text, `logger` takes its log lines.
    Raises OSError if the library cannot be loaded, ValueError if it refuses the config."""

    def __init__(
        self, library: str, config: dict[str, str], topic: str, logger: logging.Logger
    ) -> None: ...
    def send(
        self,
        keys: Sequence[str | bytes | None],
        values: Sequence[bytes | None],
        on_full: Callable[[], object],
        /,
    ) -> None:
        """Queue one message per (key, value); while the queue is full, call `on_full()`
        (it may raise to give up; the messages before stay queued) and wait for room."""
    def send_one(
        self,
        key: str | bytes | None,
        value: bytes | None,
        headers: Sequence[Header],
        on_full: Callable[[], object],
        /,
    ) -> None:
        """Queue one message with headers."""
    def flush(self, timeout_ms: int, /) -> int:
        """Wait for acknowledgements; how many messages are still outstanding."""
    def purge(self) -> None:
        """Drop every queued and in-flight message."""
    def learn_topic(self, timeout_ms: int, /) -> bool:
        """Fetch the topic's partitions into the producer's cache; True if it could."""
    def take_failures(self) -> tuple[int, str]:
        """Delivery failures (and fatal errors) since the last call, and the first one's text."""
