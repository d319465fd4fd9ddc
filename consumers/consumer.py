"""The consumer-group member that turns the event topic into committed totals.

Each batch is prepared (decoded, validated, dated) on a second thread while the batch
before it is applied: its dead letters are sent and acknowledged, then it goes to the store
in one transaction together with the next offsets. So one batch is "in hand" (read, not
yet applied) at a time. It is applied before its partitions are revoked, and given back
(its partitions sought to its first offsets) when the batch before it is not committed.
Offsets are read back from the store on assignment, so Kafka's own committed offsets are
only informational (for lag tools). While the store is unavailable every store call is
retried; a stop ends that wait, leaving the batch in hand uncommitted (whoever gets its
partitions consumes it again).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import polars as pl
from confluent_kafka import OFFSET_BEGINNING

import meterpipe.polars_threads  # noqa: F401  (polars safe on the preparing thread)
from consumers.batch import PreparedBatch, RawBatch, prepare_batch
from consumers.dead_letters import dead_letter_headers
from consumers.group_member import GroupMember, RebalanceKind, open_consumer, read_batch
from consumers.store import BatchOutcome, BatchStats, StoredOffset, TotalsFolder, TotalsStore
from meterpipe.errors import AuthorizationError, PublishError, StaleBatchError, StoreError
from meterpipe.kafka_config import consumer_config, dead_letter_producer_config
from meterpipe.kafka_refusal import refused_by_acls
from meterpipe.metrics import PipelineMetrics
from meterpipe.publisher import EventPublisher
from meterpipe.settings import Settings
from meterpipe.topics import log_identity
from schemas.codec import EventCodec
from schemas.periods import PeriodCalendar

__all__ = ["UsageConsumer"]

log = logging.getLogger(__name__)
PROVENANCE_COLUMNS = ["uploadRef", "rowNumber"]
STORE_RETRY_S = (0.5, 1.0, 2.0, 4.0, 8.0)  # backoff while the store is unavailable, then 8 s
DEAD_LETTER_RETRY_S = 2.0  # pause before reading a batch again whose dead letters failed
T = TypeVar("T")


class _StopRequested(Exception):
    """Raised out of a store retry once the consumer is asked to stop; caught by run()."""


@dataclass(frozen=True)
class _InHand:
    """A batch read from the topic, prepared (or being prepared) on the preparing thread.

    `prepared` yields the prepared batch and the seconds its preparation took.
    """

    raw: RawBatch
    prepared: Future[tuple[PreparedBatch, float]]


class UsageConsumer:
    """One member of the consumer group; `run()` until `stop` is set."""

    def __init__(
        self,
        settings: Settings,
        bootstrap: str,
        store: TotalsStore,
        codec: EventCodec,
        metrics: PipelineMetrics,
    ) -> None:
        self._settings = settings
        self._bootstrap = bootstrap
        self._store = store
        self._codec = codec
        self._metrics = metrics
        self._topic = settings.kafka.topic
        self._positions: dict[int, StoredOffset | None] = {}
        self._log_id = ""
        self._in_hand: _InHand | None = None
        self._unfolded = 0  # batches committed since totals were last folded
        self._folding = True  # combined parts may wait to be folded (a run may have left some)
        self._stop = threading.Event()
        self._consumer: GroupMember | None = None  # while run() runs: rebalances use it
        self._dead_letters = EventPublisher(
            dead_letter_producer_config(settings.kafka, bootstrap), settings.kafka.dlq_topic
        )

    def run(self, stop: threading.Event, closing: threading.Event | None = None) -> None:
        """Consume batches until `stop` is set, then leave the group cleanly.

        `closing` is set once the member has begun to leave: from then on it never joins
        a group again, however long librdkafka takes to close it (see meterpipe.pipeline).
        """
        self._stop = stop
        kafka = self._settings.kafka
        config = consumer_config(kafka, self._bootstrap, kafka.consumer_group)
        consumer = open_consumer(config, self._topic, self._on_rebalance, self._on_stats)
        self._consumer = consumer
        consumer.subscribe()
        preparer = ThreadPoolExecutor(1, thread_name_prefix="meterpipe-prepare")
        try:
            while not stop.is_set():
                self._consume_once(consumer, preparer)
            self._apply_in_hand(consumer)
        except _StopRequested:
            log.info("stopped while waiting for the store; the batch in hand is not committed")
        finally:
            preparer.shutdown(cancel_futures=True)
            if closing is not None:
                closing.set()
            try:
                consumer.close()
            finally:
                self._consumer = None
                self._dead_letters.close()

    def _consume_once(self, consumer: GroupMember, preparer: ThreadPoolExecutor) -> None:
        """Read a batch and start preparing it; meanwhile apply the batch in hand.

        With a batch in hand, the read does not wait for more messages: when none are
        ready, the batch in hand is applied at once, and the topic is not yet idle. While
        a fold has parts left, an idle topic is no reason to wait either.
        """
        holding = self._in_hand is not None
        wait = 0.0 if holding or self._folding else self._settings.consumer.batch_wait_s
        raw = read_batch(consumer, self._settings.consumer.batch_max_events, wait)
        following = self._take(raw, preparer) if raw is not None else None
        self._in_hand = self._apply_in_hand(consumer, following)
        self._fold_if_due(idle=not holding and raw is None)

    def _on_rebalance(
        self, kind: RebalanceKind, partitions: list[int]
    ) -> list[tuple[int, int]] | None:
        """librdkafka's rebalance: the offsets to start assigned partitions from."""
        if kind == "assign":
            return self._on_assign(partitions)
        self._on_revoke(partitions)  # revoked or lost alike: the batch in hand is applied
        return None

    def _on_assign(self, partitions: list[int]) -> list[tuple[int, int]]:
        """Resume each partition where the store says, or from the start of a new log."""
        self._log_id = log_identity(self._settings.kafka, self._bootstrap, self._topic)
        stored = self._retrying(lambda: self._store.load_offsets(self._topic))
        starts = []
        for partition in partitions:
            position = stored.get(partition)
            self._positions[partition] = position
            offset = self._resume_offset(position)
            starts.append((partition, offset))
            log.info(
                "assigned partition %d from offset %d", partition, offset,
                extra={"partition": partition, "offset": offset},
            )  # fmt: skip
        self._metrics.readiness.set("kafka: partitions assigned", True)
        return starts

    def _on_revoke(self, partitions: list[int]) -> None:
        if self._stop.is_set():
            # Leaving: the metrics are its successor's now (in `up`, a new member may be
            # assigned before this one's close ends), or the process is ending.
            return
        if self._consumer is not None:
            # Its partitions are still ours: the batch in hand would only be read again.
            self._in_hand = self._apply_in_hand(self._consumer)
        for partition in partitions:
            self._positions.pop(partition, None)
            # Its lag is its new owner's to report; a stale gauge here would never move again.
            with contextlib.suppress(KeyError):
                self._metrics.consumer_lag.remove(self._topic, str(partition))
        self._metrics.readiness.set("kafka: partitions assigned", False)

    def _on_stats(self, stats_json: str) -> None:
        stats = json.loads(stats_json)
        partitions = stats.get("topics", {}).get(self._topic, {}).get("partitions", {})
        for partition, figures in partitions.items():
            lag = figures.get("consumer_lag", -1)
            if partition != "-1" and lag >= 0:
                self._metrics.consumer_lag.labels(self._topic, partition).set(lag)

    def _take(self, raw: RawBatch, preparer: ThreadPoolExecutor) -> _InHand | None:
        """Start preparing a batch on the preparing thread (None: no message to prepare)."""
        if not len(raw.values):
            return None
        states = self._retrying(self._store.period_states)
        calendar = PeriodCalendar.of(self._settings.periods, states, datetime.now(UTC))
        max_bytes = self._settings.kafka.max_message_bytes

        def prepare() -> tuple[PreparedBatch, float]:
            started = time.perf_counter()
            prepared = prepare_batch(raw, self._codec, calendar, max_bytes)
            return prepared, time.perf_counter() - started

        return _InHand(raw, preparer.submit(prepare))

    def _apply_in_hand(
        self, consumer: GroupMember, following: _InHand | None = None
    ) -> _InHand | None:
        """Apply the batch in hand; return the batch to hold next.

        That is `following` (read after it), unless the batch in hand was not committed:
        then `following` is given back, to be read again after it.
        """
        in_hand, self._in_hand = self._in_hand, None
        if in_hand is None or self._apply(consumer, in_hand, following):
            return following
        return None

    def _apply(self, consumer: GroupMember, in_hand: _InHand, following: _InHand | None) -> bool:
        """Send a batch's dead letters, then commit it to the store; False if not committed.

        A batch that is not committed is read again, and so is `following`: each partition
        is sought back to the first of their messages that is not in the store.
        """
        raw = in_hand.raw
        prepared, seconds = in_hand.prepared.result()
        started = time.perf_counter()
        given_back = following.raw.first_offsets() if following is not None else {}
        try:
            self._send_dead_letters(prepared)
        except PublishError as exc:
            if refused_by_acls(str(exc)):
                raise AuthorizationError(
                    f"cannot write dead letters to {self._settings.kafka.dlq_topic}, so nothing of"
                    f" the batch was committed: {exc}"
                ) from exc
            # Nothing of the batch is committed: read again, its letters are sent again (the
            # dead-letter topic is at least once), until the broker acknowledges them.
            log.error("dead letters not acknowledged, the batch will be read again: %s", exc)
            self._seek(consumer, {**given_back, **raw.first_offsets()})
            self._stop.wait(DEAD_LETTER_RETRY_S)
            return False
        try:
            stats = self._commit(raw, prepared)
        except StaleBatchError as exc:
            log.warning("%s", exc)
            self._metrics.batches_fenced.inc()
            self._seek(consumer, {**given_back, **self._stored_positions(raw)})
            return False
        self._record(raw, prepared, stats, seconds + time.perf_counter() - started)
        self._unfolded += 1
        consumer.commit(list(raw.next_offsets().items()))
        return True

    def _fold_if_due(self, idle: bool) -> None:
        """Start a fold when the topic is idle, or after enough batches; else fold a part.

        Idle time is free; the batch count bounds the pending deltas (and what every
        reader must add up) under a stream that never pauses. While a batch is in hand the
        fold waits, up to twice that count: combining can take seconds, and the batch in
        hand may be the one that finishes an upload. A fold's parts go one per loop, so a
        fold of many keys never holds up the batches behind it for long.
        """
        folder = self._store if isinstance(self._store, TotalsFolder) else None
        if folder is None:  # the store totals each batch in its transaction (PostgreSQL)
            self._folding = False
            return
        due = self._settings.consumer.fold_every_batches
        if self._in_hand is not None:
            due *= 2
        if self._unfolded and (idle or self._unfolded >= due):
            started = time.perf_counter()
            rows = self._retrying(folder.start_fold)
            self._unfolded = 0
            self._folding = True  # its parts, and any an earlier fold left, one per loop
            log.info(
                "totals combined for folding",
                extra={"rows": rows, "seconds": round(time.perf_counter() - started, 3)},
            )  # fmt: skip
        elif self._folding:
            self._folding = self._retrying(folder.fold_part) > 0
            if not self._folding:
                log.info("totals folded")

    def _send_dead_letters(self, prepared: PreparedBatch) -> None:
        """Dead letters are acknowledged before the batch commits, so none is ever lost.

        A replayed event refused again is already in the dead-letter topic: not sent twice.
        """
        fresh = [letter for letter in prepared.dead_letters if not letter.replayed]
        for letter in fresh:
            headers = dead_letter_headers(letter, self._topic)
            self._dead_letters.send_with_headers(letter.key, letter.value, headers)
        if fresh:
            self._dead_letters.flush()

    def _commit(self, raw: RawBatch, prepared: PreparedBatch) -> BatchStats:
        """Apply the batch to the store, retrying while the store is unavailable."""
        letters = [(d.upload_ref, d.row_number) for d in prepared.dead_letters]
        outcome = BatchOutcome(
            topic=self._topic,
            log_id=self._log_id,
            events=prepared.events,
            dead_lettered=_provenance_frame(letters),
            compared=prepared.compared,
            offsets={
                partition: (self._positions.get(partition), next_offset)
                for partition, next_offset in raw.next_offsets().items()
            },
        )
        stats = self._retrying(lambda: self._store.apply_batch(outcome))
        for partition, next_offset in raw.next_offsets().items():
            self._positions[partition] = StoredOffset(self._log_id, next_offset)
        return stats

    def _retrying(self, call: Callable[[], T]) -> T:
        """Call the store until it answers or the consumer is stopped.

        A lost connection must not end the consumer, nor keep a stopping one waiting.
        """
        attempt = 0
        while True:
            try:
                result = call()
                break
            except StaleBatchError:
                raise
            except StoreError as exc:
                self._metrics.readiness.set("store: reachable", False, str(exc))
                log.warning("store unavailable, retrying: %s", exc)
                if self._stop.wait(STORE_RETRY_S[min(attempt, len(STORE_RETRY_S) - 1)]):
                    raise _StopRequested from exc
                attempt += 1
        self._metrics.readiness.set("store: reachable", True)
        return result

    def _stored_positions(self, raw: RawBatch) -> dict[int, int]:
        """After a fenced batch: where the store says each of its partitions (if still ours)
        continues."""
        stored = self._retrying(lambda: self._store.load_offsets(self._topic))
        offsets = {}
        for partition in raw.next_offsets():
            if partition in self._positions:
                position = stored.get(partition)
                self._positions[partition] = position
                offsets[partition] = self._resume_offset(position)
        return offsets

    def _resume_offset(self, position: StoredOffset | None) -> int:
        """Where a partition continues: the stored offset if it is of this log, else its start.

        An offset of an earlier log (a broker that lost its data) would skip that many of
        the new log's messages.
        """
        if position is not None and position.log_id == self._log_id:
            return position.next_offset
        return OFFSET_BEGINNING

    def _seek(self, consumer: GroupMember, offsets: dict[int, int]) -> None:
        """Continue each partition from its offset; one revoked meanwhile is its new owner's."""
        for partition, reason in consumer.seek(list(offsets.items())):
            log.warning("cannot rewind partition %d: %s", partition, reason)

    def _record(
        self, raw: RawBatch, prepared: PreparedBatch, stats: BatchStats, seconds: float
    ) -> None:
        metrics = self._metrics
        metrics.events_consumed.inc(len(raw.values))
        metrics.events_accepted.inc(stats.accepted)
        metrics.events_duplicate.inc(stats.duplicates)
        metrics.events_conflicting.inc(stats.conflicts)
        metrics.events_redelivered.inc(stats.redelivered)
        for letter in prepared.dead_letters:
            metrics.events_invalid.labels(letter.reason).inc()
        metrics.batch_seconds.observe(seconds)
        metrics.rate.add(len(raw.values))
        log.info(
            "batch committed",
            extra={
                "events": len(raw.values), "accepted": stats.accepted,
                "duplicates": stats.duplicates, "conflicts": stats.conflicts,
                "redelivered": stats.redelivered,
                "deadLettered": stats.dead_lettered, "seconds": round(seconds, 3),
                "partitions": sorted(raw.next_offsets()),
            },
        )  # fmt: skip
        for reference in stats.finished_uploads:
            log.info("upload %s is Done", reference, extra={"upload": reference})


def _provenance_frame(rows: list[tuple[str | None, int | None]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"uploadRef": pl.String, "rowNumber": pl.Int64}, orient="row")
