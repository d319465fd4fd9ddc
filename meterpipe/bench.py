"""`meterpipe bench`: throughput of every phase, against the transport ceiling, checked.

Each phase runs the real CLI in a child process (so its peak RSS is its own) against one
broker: the embedded one unless a cluster is configured. Every run uses fresh topics,
groups and directories, and the consumed totals must equal the ground truth computed
straight from the generated file, so a fast but wrong pipeline cannot pass.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from consumers.store import open_store
from consumers.store.reports import summarize_totals
from meterpipe.bench_children import (
    Child,
    Phase,
    child_env,
    phase_of,
    upload_progress,
    wait_done,
)
from meterpipe.bench_http import http_phases
from meterpipe.bench_stores import prefill_event_ids, scenario_store
from meterpipe.bench_textbook import textbook_end_to_end, textbook_totals
from meterpipe.bench_transport import consume_ceiling, produce_ceiling
from meterpipe.bench_truth import comparable, csv_totals
from meterpipe.broker import EmbeddedBroker
from meterpipe.errors import MeterpipeError
from meterpipe.sample_data import SampleSpec, write_sample_file
from meterpipe.settings import KafkaSettings, Settings, StoreSettings
from meterpipe.topics import ensure_topics
from producers.csv_chunks import CsvChunkReader
from producers.formats import APPDIRECT, FormatChooser
from schemas.codec import make_codec
from schemas.uploads import UploadRecord

__all__ = [
    "BenchReport", "ConsumeScenario", "Phase", "encoded_event_sample", "median_phases", "run_bench",
]  # fmt: skip

SAMPLE_BYTES = 4 * 1024 * 1024  # rows read for the events the ceiling sends
TEXTBOOK = "textbook: end to end"


@dataclass(frozen=True)
class BenchReport:
    """Everything `meterpipe bench` prints: the median phases, and every round's."""

    rows: int
    file_mb: float
    phases: list[Phase]
    totals_match: bool
    rounds: list[list[Phase]]

    @property
    def over_textbook(self) -> float | None:
        """The end-to-end rate as a multiple of the textbook pipeline's (None: not measured)."""
        rates = {phase.name: phase.events_per_s for phase in self.phases}
        textbook = rates.get(TEXTBOOK)
        return round(rates["end to end"] / textbook, 1) if textbook else None

    def to_json(self) -> dict[str, Any]:
        """The stable `--json` shape."""
        return {
            "rows": self.rows,
            "fileMB": round(self.file_mb, 1),
            "totalsMatchGroundTruth": self.totals_match,
            "endToEndOverTextbook": self.over_textbook,
            "phases": [asdict(phase) for phase in self.phases],
            "rounds": [[asdict(phase) for phase in phases] for phases in self.rounds],
        }


def median_phases(rounds: Sequence[Sequence[Phase]]) -> list[Phase]:
    """Per phase, the round with the median rate (the lower of two middles), and the range.

    The machine's speed drifts by up to a factor of two within an hour, so one round can
    mislead; a measured round, not an average of them, keeps its seconds, memory and
    share of its own round's ceiling consistent with its rate.
    """
    if len(rounds) == 1:
        return list(rounds[0])
    medians = []
    for measured in zip(*rounds, strict=True):
        rates = [phase.events_per_s for phase in measured]
        middle = sorted(measured, key=lambda phase: phase.events_per_s)[(len(measured) - 1) // 2]
        medians.append(replace(middle, events_per_s_range=(min(rates), max(rates))))
    return medians


@contextlib.contextmanager
def _bootstrap(settings: Settings) -> Iterator[str]:
    if settings.kafka.bootstrap_servers:
        yield settings.kafka.bootstrap_servers
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap_servers


def _wait_reference(
    settings: StoreSettings, reference: str, children: list[Child]
) -> tuple[float, int]:
    """`_wait_done` for an upload known by reference, in any store."""
    store = open_store(settings)

    def progress() -> tuple[int, str | None]:
        upload = store.find_upload(reference)
        if upload is None:
            return 0, None
        return upload.accepted + upload.duplicates + upload.dead_lettered, upload.status

    try:
        return wait_done(progress, children)
    finally:
        store.close()


def _store_totals(settings: StoreSettings) -> list[dict[str, Any]]:
    store = open_store(settings)
    try:
        rows = summarize_totals(store.total_rows(None, None, None))
    finally:
        store.close()
    return comparable([row.to_json() for row in rows])


@dataclass(frozen=True)
class ConsumeScenario:
    """An extra consume measurement: N consumer processes on a store of its own."""

    consumers: int = 1
    store_url: str | None = None
    prefill: int = 0

    @property
    def name(self) -> str:
        """The phase name in the report."""
        store = "PostgreSQL" if self.store_url else "SQLite"
        extra = [f"{self.consumers} consumers"] if self.consumers > 1 else []
        extra += [f"{self.prefill:,} ids stored"] if self.prefill else []
        return f"consume ({', '.join([store, *extra])})"


def run_bench(
    settings: Settings,
    rows: int,
    work: Path,
    say: Callable[[str], None],
    scenarios: Sequence[ConsumeScenario] = (),
    *,
    rounds: int = 1,
    http_body_mb: int = 0,
    textbook_rows: int = 0,
) -> BenchReport:
    """Generate a file, measure every phase `rounds` times, check the totals of each.

    Each run works in a new directory under `work`, each round in one of its own: a store
    or inbox left by an earlier one would make this one's upload a duplicate, or fail.
    `say` reports progress. The textbook pipeline runs on the file's first `textbook_rows`
    rows (0: not at all): at one row at a time, the whole file would take minutes.
    """
    work = work / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    work.mkdir(parents=True)
    say(f"working in {work}")
    source = work / f"usage-{rows}.csv"
    say(f"generating {rows:,} rows")
    write_sample_file(source, SampleSpec(rows=rows))
    say("computing the ground truth")
    truth = csv_totals(source)
    textbook = _first_rows(source, textbook_rows) if textbook_rows else None
    measured: list[list[Phase]] = []
    found: list[list[dict[str, Any]]] = []
    with _bootstrap(settings) as bootstrap:
        for number in range(1, rounds + 1):
            round_dir = work / f"round-{number}"
            round_dir.mkdir()
            say_in_round = _in_round(say, number, rounds)
            bench = _Bench(bootstrap, source, rows, round_dir, say_in_round, http_body_mb, textbook)
            phases = bench.measure(settings.kafka)
            found.append(_store_totals(StoreSettings(data_dir=round_dir / "pipe" / "data")))
            for scenario in scenarios:
                phase, totals = bench.consume_scenario(scenario, phases[1].events_per_s)
                phases.append(phase)
                found.append(totals)
            measured.append(phases)
    matches = all(totals == truth for totals in found)
    size_mb = source.stat().st_size / 1e6
    return BenchReport(rows, size_mb, median_phases(measured), matches, measured)


def _first_rows(source: Path, rows: int) -> Path:
    """A file of the header and the first `rows` rows of `source`, beside it."""
    path = source.with_name(f"first-{rows}.csv")
    with source.open("rb") as whole, path.open("wb") as first:
        first.writelines(itertools.islice(whole, rows + 1))
    return path


def _in_round(say: Callable[[str], None], number: int, rounds: int) -> Callable[[str], None]:
    """`say`, naming the round when there are several."""
    if rounds == 1:
        return say
    return lambda step: say(f"round {number}/{rounds}: {step}")


def encoded_event_sample(source: Path) -> list[bytes]:
    """The Avro values the file's first rows become: what the ceiling sends, cycled.

    The ceiling must move messages like the events: an event is larger than its CSV row
    (provenance, the single-object header), by about a fifth for the benchmark file, and
    compresses as they do.
    """
    chooser = FormatChooser([APPDIRECT])
    with source.open("rb") as stream:
        chunk = next(iter(CsvChunkReader(stream, chooser, SAMPLE_BYTES)))
    valid = APPDIRECT.validate(chunk.frame, max_errors=0).valid
    upload = UploadRecord(reference=f"u-{'0' * 16}", name=source.name, upload_key="0" * 64)
    return make_codec(None, "bench").encode(APPDIRECT.to_events(valid, upload))


@dataclass(frozen=True)
class _Bench:
    """One benchmark run's fixed inputs."""

    bootstrap: str
    source: Path
    rows: int
    work: Path
    say: Callable[[str], None]
    http_body_mb: int = 0
    textbook: Path | None = None

    def measure(self, kafka: KafkaSettings) -> list[Phase]:
        """Every phase, in order: ceiling, publish, consume, end to end, the textbook's."""
        self.say("transport ceiling")
        ceiling_kafka = kafka.model_copy(update={"topic": f"bench-ceiling-{uuid.uuid4().hex[:8]}"})
        ensure_topics(ceiling_kafka, self.bootstrap)
        produce = produce_ceiling(
            ceiling_kafka, self.bootstrap, self.rows, encoded_event_sample(self.source)
        )
        consume = consume_ceiling(ceiling_kafka, self.bootstrap, self.rows)
        return [
            phase_of("ceiling: produce", self.rows, self.rows / produce, None, None),
            phase_of("ceiling: consume", self.rows, self.rows / consume, None, None),
            *self._publish_then_consume(produce, consume),
            self._end_to_end(min(produce, consume)),
            *http_phases(self.bootstrap, self.source, self.rows, self.work,
                         ceiling=min(produce, consume), body_mb=self.http_body_mb, say=self.say),
            *self._textbook(kafka, min(produce, consume)),
        ]  # fmt: skip

    def _publish_then_consume(self, produce: float, consume: float) -> list[Phase]:
        env = child_env(self.bootstrap, self.work, "pipe")
        self.say("publish")
        started = time.perf_counter()
        publisher = Child(env, self.work / "publish.log", "publish", str(self.source))
        publish_rss = publisher.finish(stop=False)
        publish_s = time.perf_counter() - started
        if publisher.process.returncode != 0:
            raise MeterpipeError(f"publish failed, see {self.work / 'publish.log'}")
        self.say("consume (SQLite)")
        consumer = Child(env, self.work / "consume.log", "consume")
        data_dir = Path(env["METERPIPE_DATA_DIR"])
        first_at, first_done = wait_done(lambda: upload_progress(data_dir, 1), [consumer])
        consume_s = time.perf_counter() - first_at
        consume_rss = consumer.finish()
        return [
            phase_of("publish", self.rows, publish_s, publish_rss, produce),
            phase_of("consume (SQLite)", self.rows - first_done, consume_s, consume_rss, consume),
        ]

    def _end_to_end(self, ceiling: float) -> Phase:
        self.say("end to end (up: file dropped -> Done)")
        env = child_env(self.bootstrap, self.work, "e2e")
        inbox, data_dir = Path(env["METERPIPE_INBOX"]), Path(env["METERPIPE_DATA_DIR"])
        inbox.mkdir(parents=True)
        process = Child(env, self.work / "up.log", "up")
        try:
            warmup = self.work / "warmup.csv"
            write_sample_file(warmup, SampleSpec(rows=10, seed=99, accounts=2))
            shutil.copy(warmup, inbox / "warmup.csv")
            wait_done(lambda: upload_progress(data_dir, 1), [process])  # the consumer has joined
            staged = inbox / ".bench.csv"
            shutil.copy(self.source, staged)
            started = time.perf_counter()
            staged.rename(inbox / "bench.csv")
            wait_done(lambda: upload_progress(data_dir, 2), [process])
            seconds = time.perf_counter() - started
        finally:
            rss = process.finish()
        return phase_of("end to end", self.rows, seconds, rss, ceiling)

    def _textbook(self, kafka: KafkaSettings, ceiling: float) -> list[Phase]:
        """The textbook pipeline on its own topic and store; its totals must match too."""
        if self.textbook is None:
            return []
        source = self.textbook
        self.say(f"{TEXTBOOK} (one row at a time)")
        tag = uuid.uuid4().hex[:8]
        kafka = kafka.model_copy(
            update={"topic": f"bench-textbook-{tag}", "dlq_topic": f"bench-textbook-dlq-{tag}"}
        )
        ensure_topics(kafka, self.bootstrap)
        store = self.work / "textbook.sqlite3"
        rows, seconds = textbook_end_to_end(kafka, self.bootstrap, source, store)
        if comparable(textbook_totals(store)) != csv_totals(source):
            raise MeterpipeError("the textbook pipeline's totals do not match the ground truth")
        return [phase_of(TEXTBOOK, rows, seconds, None, ceiling)]

    def consume_scenario(
        self, scenario: ConsumeScenario, ceiling: float
    ) -> tuple[Phase, list[dict[str, Any]]]:
        """Publish the file to fresh topics and a fresh store, then time N consumers on it."""
        tag = f"scenario-{uuid.uuid4().hex[:8]}"
        env = child_env(self.bootstrap, self.work, tag)
        with scenario_store(Path(env["METERPIPE_DATA_DIR"]), scenario.store_url) as store:
            if store.store_url:
                env["METERPIPE_STORE_URL"] = store.store_url
            self.say(f"{scenario.name}: publishing")
            reference = f"bench-{tag}"
            publisher = Child(env, self.work / f"{tag}-publish.log", "publish",
                               "--reference", reference, str(self.source))  # fmt: skip
            publisher.finish(stop=False)
            if publisher.process.returncode != 0:
                raise MeterpipeError(f"publish failed, see {self.work / f'{tag}-publish.log'}")
            if scenario.prefill:
                self.say(f"{scenario.name}: storing {scenario.prefill:,} earlier eventIds")
                prefill_event_ids(store, scenario.prefill)
            self.say(scenario.name)
            children = [
                Child(env, self.work / f"{tag}-consume-{n}.log", "consume")
                for n in range(scenario.consumers)
            ]
            first_at, first_done = _wait_reference(store, reference, children)
            seconds = time.perf_counter() - first_at
            rss = max(child.finish() for child in children)
            totals = _store_totals(store)
        phase = phase_of(scenario.name, self.rows - first_done, seconds, rss, ceiling)
        return phase, totals
