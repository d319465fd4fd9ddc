"""Types of the C extension consumers/_direct_consumer.c (see its header comment)."""

import logging
from collections.abc import Callable, Sequence
from typing import Literal

RebalanceKind = Literal["assign", "revoke", "lost"]
# Keys or values in Arrow's large-binary layout: int64 offsets (rows + 1), the bytes, and
# the validity bitmap (None when no value is null), then the count of nulls.
Column = tuple[bytes, bytes, bytes | None, int]
# partitions (int32 each), offsets (int64 each), keys, values, indexes of replayed
# messages, texts of message errors
Batch = tuple[bytes, bytes, Column, Column, list[int], list[str]]

class DirectConsumer:
    """A librdkafka group member for one topic: `library` is the path of librdkafka's
    shared object, `config` librdkafka's keys and values as text, `logger` takes its log
    lines, `on_rebalance(kind, partitions)` returns on "assign" the (partition, offset)
    to start each from, `on_stats` takes the statistics JSON, and messages carrying the
    header `replay_header` are listed as replayed. Raises OSError if the library cannot be
    loaded, ValueError if it refuses the config."""

    def __init__(
        self,
        library: str,
        config: dict[str, str],
        topic: str,
        logger: logging.Logger,
        on_rebalance: Callable[[RebalanceKind, list[int]], Sequence[tuple[int, int]] | None],
        on_stats: Callable[[str], object],
        replay_header: str,
    ) -> None: ...
    def subscribe(self) -> None:
        """Join the group for the topic."""
    def consume(self, max_messages: int, timeout_ms: int, /) -> Batch:
        """Up to `max_messages` messages as columns; serves rebalances, statistics and logs.
        An exception raised by `on_rebalance` is raised here (its messages are dropped)."""
    def commit(self, offsets: Sequence[tuple[int, int]], /) -> None:
        """Commit (partition, next offset) pairs to Kafka, asynchronously."""
    def seek(self, offsets: Sequence[tuple[int, int]], timeout_ms: int, /) -> list[tuple[int, str]]:
        """Continue each partition from its offset; the (partition, reason) pairs refused."""
    def close(self) -> None:
        """Leave the group (serving the last rebalance) and free the client."""
