"""Inbox names are never trusted as paths: a real watcher on real directories.

Every file here is refused by its header, so uploads end in Error without reaching Kafka
(the producer is created lazily and never connects), which keeps the watcher real.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumers.store import open_store
from meterpipe.metrics import PipelineMetrics
from meterpipe.pipeline import upload_publisher
from meterpipe.settings import Settings, load_settings
from producers.inbox_paths import MAX_NAME_BYTES
from producers.watcher import InboxWatcher
from tests.processes import wait_for

UNREACHABLE = "127.0.0.1:1"


def _watch(settings: Settings, stop: threading.Event) -> None:
    """What `up` runs in its watcher thread, with every store connection in this thread."""
    with upload_publisher(settings, UNREACHABLE, PipelineMetrics(registry=None), stop) as uploads:
        store = open_store(settings.store)
        try:
            InboxWatcher(settings.watch, uploads, store).run(stop)
        finally:
            store.close()


@pytest.fixture
def inbox(tmp_path: Path) -> Iterator[Path]:
    """A running watcher on `tmp_path/inbox`; yields the inbox."""
    settings = load_settings(
        inbox=tmp_path / "inbox", data_dir=tmp_path / "data", min_file_age_s=0.0,
        poll_interval_s=0.05,
    )  # fmt: skip
    settings.watch.inbox.mkdir()
    stop = threading.Event()
    thread = threading.Thread(target=_watch, args=(settings, stop), name="watcher")
    thread.start()
    yield settings.watch.inbox
    stop.set()
    thread.join(30)
    assert not thread.is_alive()


def _drop(inbox: Path, name: str, content: str = "not,a,usage,header\n1,2,3,4\n") -> None:
    """Write under a hidden name, then rename: the watcher sees only complete files."""
    staging = inbox / ".staging"
    staging.write_text(content, encoding="utf-8")
    staging.rename(inbox / name)


def _reported(inbox: Path, name: str) -> dict[str, object]:
    """The status report of `name` in error/, once it is there."""
    path = inbox / "error" / f"{name}.status.json"
    wait_for(path.exists, 30, f"{name!r} in error/")
    status: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return status


def test_symlinks_are_never_followed(
    inbox: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.csv"
    secret.write_text("private,data\n", encoding="utf-8")
    (inbox / "link.csv").symlink_to(secret)
    (inbox / "dir-link").symlink_to(outside, target_is_directory=True)
    _drop(inbox, "first.csv")
    _reported(inbox, "first.csv")
    _drop(inbox, "second.csv")  # a later poll: the link is still refused, and warned once
    _reported(inbox, "second.csv")
    assert (inbox / "link.csv").is_symlink()
    assert secret.read_text(encoding="utf-8") == "private,data\n"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.csv"]
    assert not [p for p in inbox.rglob("*link*") if p.parent != inbox]
    warnings = [r.getMessage() for r in caplog.records if "'link.csv'" in r.getMessage()]
    assert warnings == [
        "not taking 'link.csv' from the inbox: it is a symbolic link, which is never followed"
    ]


def test_same_name_again_never_overwrites_a_file_or_report(inbox: Path) -> None:
    error = inbox / "error"
    error.mkdir()
    (error / "theirs.csv").write_text("someone else's file\n", encoding="utf-8")
    _drop(inbox, "bad.csv", "first,header\n")
    _reported(inbox, "bad.csv")
    first_report = (error / "bad.csv.errors.csv").read_text(encoding="utf-8")
    _drop(inbox, "bad.csv", "second,header\n")
    _drop(inbox, "theirs.csv")
    second = _reported(inbox, "bad.1.csv")
    _reported(inbox, "theirs.1.csv")
    assert (error / "bad.csv").read_text(encoding="utf-8") == "first,header\n"
    assert (error / "bad.1.csv").read_text(encoding="utf-8") == "second,header\n"
    assert (error / "bad.csv.errors.csv").read_text(encoding="utf-8") == first_report
    assert "second" in (error / "bad.1.csv.errors.csv").read_text(encoding="utf-8")
    assert second["name"] == "bad.csv"
    assert (error / "theirs.csv").read_text(encoding="utf-8") == "someone else's file\n"


def test_hostile_names_stay_inside_the_lifecycle_folders(
    inbox: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="producers.watcher")
    processing = inbox / "processing"
    processing.mkdir()
    (processing / "stray.csv").write_text("dropped here by hand\n", encoding="utf-8")
    undecodable = os.fsdecode(b"caf\xe9.csv")
    too_long = "x" * (MAX_NAME_BYTES - 3) + ".csv"
    names = [
        "%2e%2e%2f..%2fescape.csv", "a--b--c.csv", "back\\..\\slash.csv", "new\nline.csv",
        "semi;colon $(x).csv", "u-0123456789abcdef--looks-claimed.csv", undecodable, "é" * 60,
    ]  # fmt: skip
    for name in [*names, too_long]:
        _drop(inbox, name)
    statuses = {name: _reported(inbox, name) for name in names}
    assert {name: status["name"] for name, status in statuses.items()} == {
        **{name: name for name in names},
        undecodable: "caf\ufffd.csv",
    }
    assert (inbox / too_long).exists()
    assert (processing / "stray.csv").exists()
    messages = " ".join(record.getMessage() for record in caplog.records)
    assert "caf\ufffd.csv" in messages
    assert not re.search("[\ud800-\udfff]", messages), "a log line is not valid UTF-8"
    assert f"longer than {MAX_NAME_BYTES} bytes" in messages
    assert "ignoring 'stray.csv': not a claimed upload" in messages
    everything = {p.relative_to(tmp_path) for p in tmp_path.rglob("*")}
    assert {p.parts[0] for p in everything} == {"inbox", "data"}
    assert {p.parts[1] for p in everything if p.parts[0] == "inbox" and len(p.parts) > 1} == {
        "processing", "error", too_long
    }  # fmt: skip
