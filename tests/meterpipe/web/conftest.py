"""A real `meterpipe up` (real broker, real store) serving its HTTP API on a free port."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes import http_port, start_cli, stop, wait_for


@dataclass
class Server:
    """A running `meterpipe up` or `serve`: its environment, base URL and log."""

    env: dict[str, str]
    url: str
    log: Path

    @property
    def data_dir(self) -> Path:
        return Path(self.env["METERPIPE_DATA_DIR"])

    @property
    def inbox(self) -> Path:
        return Path(self.env["METERPIPE_INBOX"])

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def wait_final(self, reference: str, key: str | None = None) -> dict[str, Any]:
        """The upload once it is Done or in Error."""

        def final() -> dict[str, Any] | None:
            with self.client(key) as client:
                upload: dict[str, Any] = client.get(f"/v1/uploads/{reference}").json()
            return upload if upload["status"] != "Processing" else None

        return wait_for(final, 180, f"upload {reference} final")


ServerFactory = Callable[..., Server]


@pytest.fixture
def web_server(pipeline_env: dict[str, str], tmp_path: Path) -> Iterator[ServerFactory]:
    """Starts `meterpipe up` (or the command given) with extra env vars; stops it after."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*command: str, **env: str) -> Server:
        full_env = {**pipeline_env, "METERPIPE_HTTP_PORT": "0", **env}
        log = tmp_path / f"{command[0] if command else 'up'}-{len(started)}.log"
        process = start_cli(full_env, log, *(command or ("up",)))
        started.append(process)
        port = http_port(process, log)
        return Server(full_env, f"http://127.0.0.1:{port}", log)

    yield start
    for process in started:
        stop(process)


@pytest.fixture
def server(web_server: ServerFactory) -> Server:
    """`meterpipe up` with its defaults (no API key: open to loopback requests)."""
    return web_server()
