"""`meterpipe bench`: the benchmark command (the work is in meterpipe.bench)."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from meterpipe.cli_options import F, friendly_errors, kafka_options, print_table
from meterpipe.settings import load_settings

if TYPE_CHECKING:
    from meterpipe.bench import BenchReport

__all__ = ["bench"]

COLUMNS = ["phase", "events", "seconds", "events/s", "peak RSS MB", "of ceiling"]


def _count(flag: str, default: int, *, minimum: int = 0, help: str) -> Callable[[F], F]:
    """An option counting rounds, MiB or rows: at least `minimum`, its default shown."""
    kind = click.IntRange(min=minimum)
    return click.option(flag, type=kind, default=default, show_default=True, help=help)


@click.command()
@click.option("--rows", type=int, default=1_000_000, show_default=True, help="Rows to generate.")
@click.option("--work-dir", type=click.Path(path_type=Path), default=None,
              help="Where files and stores go (default: a temporary dir).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--store-url",
    default=None,
    help="Also consume on this PostgreSQL database (a fresh schema per scenario).",
)
@click.option(
    "--consumers",
    default="1",
    show_default=True,
    help="With --store-url: consumer process counts to measure, e.g. 1,2,3.",
)
@click.option(
    "--prefill",
    type=int,
    default=0,
    help="Also consume on a SQLite store already holding this many eventIds.",
)
@_count(
    "--repeat",
    1,
    minimum=1,
    help="Rounds of every phase on the same file: the median round is shown, with the range.",
)
@_count(
    "--http-body-mb", 1024, help="Size of the body whose receiving memory is measured (0 skips it)."
)
@_count(
    "--textbook-rows",
    100_000,
    help="Rows of the file the textbook pipeline (one row at a time) runs on (0 skips it).",
)
@kafka_options
@friendly_errors
def bench(
    *,
    rows: int,
    work_dir: Path | None,
    as_json: bool,
    store_url: str | None,
    consumers: str,
    prefill: int,
    repeat: int,
    http_body_mb: int,
    textbook_rows: int,
    bootstrap_servers: str | None,
) -> None:
    """Measure every phase against the transport ceiling and check the totals.

    Example: meterpipe bench --rows 1000000 --repeat 3 --prefill 50000000
    --store-url postgresql://postgres@127.0.0.1:5432/test --consumers 1,2,3
    """  # fmt: skip
    from meterpipe.bench import ConsumeScenario, run_bench

    settings = load_settings(bootstrap_servers=bootstrap_servers)
    scenarios = [ConsumeScenario(prefill=prefill)] if prefill else []
    if store_url:
        counts = [int(count) for count in consumers.split(",")]
        scenarios += [ConsumeScenario(consumers=n, store_url=store_url) for n in counts]
    with _work_dir(work_dir) as work:
        say = lambda step: click.echo(f"... {step}", err=True)  # noqa: E731
        report = run_bench(
            settings, rows, work, say, scenarios,
            rounds=repeat, http_body_mb=http_body_mb, textbook_rows=min(textbook_rows, rows),
        )  # fmt: skip
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        _print_report(report)
    if not report.totals_match:
        sys.exit(1)


def _print_report(report: BenchReport) -> None:
    """The phases as a table; over several rounds, with each phase's range of rates."""
    ranged = len(report.rounds) > 1
    columns = [*COLUMNS[:4], "range", *COLUMNS[4:]] if ranged else COLUMNS
    rows = []
    for p in report.phases:
        low, high = p.events_per_s_range or (0, 0)
        spread = [f"{low:.0f}-{high:.0f}"] if ranged else []
        share = f"{p.of_ceiling:.0%}" if p.of_ceiling is not None else ""
        rows.append([p.name, p.events, p.seconds, p.events_per_s, *spread, p.peak_rss_mb, share])
    print_table(columns, rows)
    verdict = "match" if report.totals_match else "DO NOT MATCH"
    rounds = f"; the median of {len(report.rounds)} rounds" if ranged else ""
    size = f"{report.rows:,} rows ({report.file_mb:.0f} MB)"
    click.echo(f"{size}: totals {verdict} ground truth{rounds}")
    if report.over_textbook is not None:
        click.echo(f"end to end: {report.over_textbook}x the textbook pipeline's rate")


@contextmanager
def _work_dir(work_dir: Path | None) -> Iterator[Path]:
    if work_dir is not None:
        yield work_dir
        return
    with tempfile.TemporaryDirectory(prefix="meterpipe-bench-") as temporary:
        yield Path(temporary)
