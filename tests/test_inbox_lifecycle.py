"""The watched inbox as people and scripts use it: `meterpipe up` on real directories."""

from __future__ import annotations

import csv
import json
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from meterpipe.sample_data import HEADER, SampleSpec, write_sample_file
from tests.groundtruth import as_comparable, expected_totals
from tests.processes import (
    SLOW_PRODUCER,
    all_final,
    start_cli,
    stop,
    totals,
    uploads,
    wait_for,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def inbox_env(pipeline_env: dict[str, str]) -> dict[str, str]:
    """`up` against the session broker, with a fast inbox poll and a 1 s minimum file age."""
    Path(pipeline_env["METERPIPE_INBOX"]).mkdir()
    return {**pipeline_env, "METERPIPE_MIN_FILE_AGE_S": "1", "METERPIPE_POLL_INTERVAL_S": "0.1"}


@pytest.fixture
def up(inbox_env: dict[str, str], tmp_path: Path) -> Iterator[None]:
    """A running `meterpipe up`."""
    process = start_cli(inbox_env, tmp_path / "up.log", "up")
    yield
    stop(process)


def _drop(source: Path, inbox: Path, name: str) -> None:
    """Copy a file in the way careful tools do: write `.part`, then rename."""
    shutil.copy(source, inbox / f"{name}.part")
    (inbox / f"{name}.part").rename(inbox / name)


@pytest.mark.usefixtures("up")
def test_growing_hidden_bad_and_repeated_files(inbox_env: dict[str, str], tmp_path: Path) -> None:
    inbox = Path(inbox_env["METERPIPE_INBOX"])
    good = tmp_path / "good.csv"
    write_sample_file(good, SampleSpec(rows=2_000, seed=12, accounts=40))
    (inbox / ".hidden.csv").write_bytes(good.read_bytes())
    # A file still being written is not taken: it keeps changing for longer than the minimum age.
    growing = inbox / "growing.csv"
    lines = good.read_bytes().splitlines(keepends=True)
    for start in range(0, len(lines), 250):
        with growing.open("ab") as handle:
            handle.writelines(lines[start : start + 250])
        assert growing.exists(), "claimed while still being written"
        time.sleep(0.3)  # the pace of a slow writer; no waiting on the code under test
    wait_for((inbox / "done" / "growing.csv").exists, 60, "growing.csv in done/")
    # A rejected file lands in error/ with a spreadsheet-safe report and a status file.
    bad = tmp_path / "bad.csv"
    bad.write_text(",".join(HEADER) + "\n" + good.read_text().splitlines()[1].replace(
        good.read_text().splitlines()[1].split(",")[0], "=HYPERLINK(1)", 1) + "\n")  # fmt: skip
    _drop(bad, inbox, "bad.csv")
    wait_for((inbox / "error" / "bad.csv.status.json").exists, 60, "error report")
    with (inbox / "error" / "bad.csv.errors.csv").open(newline="") as handle:
        (report,) = list(csv.DictReader(handle))
    assert (report["row"], report["column"], report["reason"]) == ("2", "accountId", "invalid_uuid")
    assert report["value"] == "'=HYPERLINK(1)"
    status = json.loads((inbox / "error" / "bad.csv.status.json").read_text())
    assert status["status"] == "Error"
    # The same bytes again are recognised and ingest nothing.
    _drop(good, inbox, "again.csv")
    wait_for((inbox / "done" / "again.csv").exists, 60, "again.csv in done/")
    by_name = {u["name"]: u for u in uploads(inbox_env)}
    assert by_name["again.csv"]["duplicateOf"] == by_name["growing.csv"]["reference"]
    assert by_name["again.csv"]["accepted"] == 0
    assert (inbox / ".hidden.csv").exists()
    assert as_comparable(totals(inbox_env)) == expected_totals(good)


@pytest.mark.usefixtures("up")
def test_a_burst_of_200_files_is_all_processed(inbox_env: dict[str, str], tmp_path: Path) -> None:
    inbox = Path(inbox_env["METERPIPE_INBOX"])
    sources = []
    for index in range(200):
        source = tmp_path / f"burst-{index:03d}.csv"
        write_sample_file(source, SampleSpec(rows=5, seed=1000 + index, accounts=3))
        sources.append(source)
    staging = inbox / ".staging"
    staging.mkdir()
    for source in sources:
        shutil.copy(source, staging / source.name)
    for source in sources:
        (staging / source.name).rename(inbox / source.name)
    wait_for(lambda: all_final(inbox_env, 200), 240, "200 uploads final")
    assert all(u["status"] == "Done" for u in uploads(inbox_env))
    # Each file moves to done/ once the watcher sees its upload Done: a moment later.
    names = [source.name for source in sources]
    wait_for(lambda: sorted(p.name for p in (inbox / "done").glob("*")) == names or None, 60,
             "the 200 files in done/")  # fmt: skip
    assert as_comparable(totals(inbox_env)) == expected_totals(*sources)


def test_up_killed_mid_publish_resumes_to_exact_totals(
    inbox_env: dict[str, str], tmp_path: Path
) -> None:
    inbox = Path(inbox_env["METERPIPE_INBOX"])
    source = tmp_path / "big.csv"
    write_sample_file(source, SampleSpec(rows=50_000, seed=77, accounts=200))
    env = {**inbox_env, "METERPIPE_CHUNK_BYTES": "65536"}
    log = tmp_path / "up.log"
    # A slowed producer makes sure the kill lands half way through publishing.
    first = start_cli({**env, "METERPIPE_CLIENT_OVERRIDES": SLOW_PRODUCER}, log, "up")
    try:
        _drop(source, inbox, "big.csv")
        wait_for(lambda: uploads(env), 60, "the upload to be recorded")
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        stop(first)
    assert uploads(env)[0]["status"] == "Processing"
    second = start_cli(env, log, "up")
    try:
        (upload,) = wait_for(lambda: all_final(env, 1), 240, "upload Done after restart")
        wait_for((inbox / "done" / "big.csv").exists, 60, "big.csv in done/")
    finally:
        stop(second)
    assert upload["status"] == "Done"
    assert as_comparable(totals(env)) == expected_totals(source)
