"""The benchmark's HTTP phases, on `meterpipe up` beside the inbox's end to end.

`end to end (HTTP)`: the file sent to `POST /v1/uploads` (streamed, chunked) until its upload
is Done, the send included. `HTTP receive`: the resident memory of `meterpipe serve` (the
HTTP server alone, no consumer to grow beside it) while it receives a large body, over its
idle size; the body has no usage header, so it ends in Error at once after it is received
and nothing of it is published.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

from meterpipe.bench_children import (
    PHASE_TIMEOUT_S,
    Child,
    Phase,
    child_env,
    phase_of,
    upload_progress,
    wait_done,
)
from meterpipe.errors import MeterpipeError
from meterpipe.sample_data import SampleSpec, write_sample_file

__all__ = ["http_phases"]

PIECE_BYTES = 1024 * 1024
CONSOLE_LINE = re.compile(r"console: (http://\S+?)/?$", re.MULTILINE)


def _pieces(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while piece := handle.read(PIECE_BYTES):
            yield piece


def _filler(megabytes: int) -> Iterator[bytes]:
    """`megabytes` MiB of text that is not a usage file."""
    yield b"not,a,usage,file\n"
    line = b"0123456789abcdef,0123456789abcdef,0123456789abcdef,0123456789\n"
    piece = line * (PIECE_BYTES // len(line))
    sent = 0
    while sent < megabytes * PIECE_BYTES:
        yield piece
        sent += len(piece)


def _base_url(child: Child, log: Path) -> str:
    deadline = time.monotonic() + PHASE_TIMEOUT_S
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise MeterpipeError(f"meterpipe up exited early, see {log}")
        found = CONSOLE_LINE.search(log.read_text(encoding="utf-8", errors="replace"))
        if found:
            return found.group(1)
        time.sleep(0.05)
    raise MeterpipeError("meterpipe up did not serve its HTTP API in time")


def _resident_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    line = next(x for x in status.splitlines() if x.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


class _PeakRss:
    """The highest resident size of a process while the block runs."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self.peak = 0.0
        self._done = threading.Event()

    def _sample(self) -> None:
        while not self._done.wait(0.02):
            with contextlib.suppress(OSError, StopIteration):
                self.peak = max(self.peak, _resident_mb(self._pid))

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        sampler = threading.Thread(target=self._sample, daemon=True)
        sampler.start()
        try:
            yield
        finally:
            self._done.set()
            sampler.join()


def http_phases(
    bootstrap: str, source: Path, rows: int, work: Path, *, ceiling: float, body_mb: int,
    say: Callable[[str], None],
) -> list[Phase]:  # fmt: skip
    """End to end over HTTP, and (if `body_mb`) the memory receiving a `body_mb` MiB body."""
    say("end to end over HTTP (up: POST /v1/uploads -> Done)")
    env = child_env(bootstrap, work, "http")
    data_dir = Path(env["METERPIPE_DATA_DIR"])
    Path(env["METERPIPE_INBOX"]).mkdir(parents=True)
    log = work / "http-up.log"
    child = Child(env, log, "up")
    try:
        url = _base_url(child, log)
        warmup = work / "http-warmup.csv"
        write_sample_file(warmup, SampleSpec(rows=10, seed=98, accounts=2))
        _send(url, _pieces(warmup))
        wait_done(lambda: upload_progress(data_dir, 1), [child])  # the consumer has joined
        started = time.perf_counter()
        _send(url, _pieces(source))
        wait_done(lambda: upload_progress(data_dir, 2), [child])
        seconds = time.perf_counter() - started
    finally:
        rss = child.finish()
    phases = [phase_of("end to end (HTTP)", rows, seconds, rss, ceiling)]
    if body_mb:
        say(f"HTTP receive of a {body_mb} MiB body (serve)")
        phases.append(_receive(bootstrap, work, body_mb))
    return phases


def _send(url: str, body: Iterator[bytes]) -> None:
    """POST the body with chunked transfer encoding, as it is read, on a new connection."""
    address = urlsplit(url)
    assert address.hostname is not None
    client = http.client.HTTPConnection(address.hostname, address.port, PHASE_TIMEOUT_S)
    headers = {"Content-Type": "text/csv", "Transfer-Encoding": "chunked"}
    with contextlib.closing(client):
        client.request("POST", "/v1/uploads", body=body, headers=headers, encode_chunked=True)
        answer = client.getresponse()
        text = answer.read().decode("utf-8", "replace")
    if answer.status != 202:
        raise MeterpipeError(f"POST /v1/uploads answered {answer.status}: {text}")


def _receive(bootstrap: str, work: Path, body_mb: int) -> Phase:
    """Send `body_mb` MiB to `serve`; the phase's RSS is its growth over its idle size."""
    env = child_env(bootstrap, work, "http-serve")
    log = work / "http-serve.log"
    child = Child(env, log, "serve")
    try:
        url = _base_url(child, log)
        _send(url, _filler(0))  # every code path of a request loaded once
        idle = _resident_mb(child.process.pid)
        peak = _PeakRss(child.process.pid)
        started = time.perf_counter()
        with peak.watching():
            _send(url, _filler(body_mb))
        seconds = time.perf_counter() - started
    finally:
        child.finish()
    name = f"HTTP receive {body_mb} MiB (RSS over idle)"
    return Phase(name, 0, round(seconds, 3), 0, round(max(peak.peak - idle, 0.0), 1), None)
