"""A real schema registry for the tests: Apicurio Registry in a child JVM, its
Confluent-compatible API on a free loopback port, its storage in memory.

Quarkus binds port 0 atomically and logs the port it got, which is read back from its log: a
port picked free beforehand could be taken by another process before the JVM binds it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.maven_runtime import JavaToolsUnavailableError, java_command
from tests.processes import stop, wait_for
from tests.registry_dist import WHO, registry_runner

__all__ = ["CCOMPAT_PATH", "RegistryServer", "running_registry"]

CCOMPAT_PATH = "/apis/ccompat/v7"
# A small heap and only the first JIT tier: started in seconds on a busy 2-core machine.
JVM_OPTIONS = ("-Xmx384m", "-Xms64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")
READY_TIMEOUT_S = 120.0
LISTENING = re.compile(r"Listening on: http://127\.0\.0\.1:(\d+)")


@dataclass(frozen=True)
class RegistryServer:
    """A running registry: where its Confluent-compatible API is, and its log."""

    port: int
    log: Path

    @property
    def url(self) -> str:
        """The base URL Confluent clients are given (`METERPIPE_REGISTRY_URL`)."""
        return f"http://127.0.0.1:{self.port}{CCOMPAT_PATH}"

    def get(self, path: str) -> Any:
        """GET `path` of the Confluent-compatible API, decoded from JSON."""
        with urllib.request.urlopen(f"{self.url}{path}", timeout=10) as response:
            return json.load(response)

    def subjects(self) -> list[str]:
        """The subjects the registry holds."""
        found: list[str] = self.get("/subjects")
        return found

    def latest_id(self, subject: str) -> int:
        """The schema id of the latest version registered under `subject`."""
        latest = self.get(f"/subjects/{urllib.parse.quote(subject, safe='')}/versions/latest")
        return int(latest["id"])


@contextmanager
def running_registry(directory: Path) -> Iterator[RegistryServer]:
    """For fixtures: a started registry, stopped at the end. When Java or Maven is missing,
    or the registry cannot be built, the test fails (never skips), saying what to install."""
    try:
        command = [java_command(WHO), *JVM_OPTIONS, "-jar", str(registry_runner())]
    except JavaToolsUnavailableError as exc:
        pytest.fail(str(exc), pytrace=False)
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "registry.log"
    # HTTP_PORT is what its application.properties reads the port of the prod profile from.
    env = {**os.environ, "HTTP_PORT": "0", "QUARKUS_HTTP_HOST": "127.0.0.1"}
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, cwd=directory, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        server = RegistryServer(_logged_port(process, log), log)
        wait_for(lambda: _answers(server), READY_TIMEOUT_S, f"the registry to answer; see {log}")
        yield server
    finally:
        stop(process)


def _logged_port(process: subprocess.Popen[bytes], log: Path) -> int:
    """The port Quarkus logged it listens on."""

    def logged() -> int | None:
        if process.poll() is not None:
            raise AssertionError(f"the registry exited ({process.returncode}); see {log}")
        found = LISTENING.search(log.read_text(encoding="utf-8", errors="replace"))
        return int(found.group(1)) if found else None

    return wait_for(logged, READY_TIMEOUT_S, f"the registry's port in {log}")


def _answers(server: RegistryServer) -> bool:
    """True once the Confluent-compatible API lists subjects."""
    try:
        server.subjects()
    except (urllib.error.URLError, ConnectionError):
        return False
    return True
