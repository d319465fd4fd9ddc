"""Serving the application with uvicorn on a thread of the process (`up`, `serve`)."""

from __future__ import annotations

import logging
import socket
import threading
import time

import uvicorn
from fastapi import FastAPI

from meterpipe.errors import ConfigError

__all__ = ["WebServer"]

log = logging.getLogger(__name__)
START_TIMEOUT_S = 30.0


class WebServer:
    """uvicorn serving one app on a socket bound here (so port 0 reports the port it got)."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        self._host, self._port = host, port
        config = uvicorn.Config(app, log_config=None, log_level="warning", access_log=False,
                                lifespan="off", timeout_graceful_shutdown=5)  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        """Bind, serve on a daemon thread, and return the port once it accepts connections."""
        sock = self._bind()
        port = int(sock.getsockname()[1])
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="web", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(f"the HTTP API did not start on {self._host}:{port}")
            time.sleep(0.01)
        return port

    def _bind(self) -> socket.socket:
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                self._host, self._port, type=socket.SOCK_STREAM
            )[0]
            sock = socket.socket(family, kind, proto)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
        except OSError as exc:
            raise ConfigError(
                f"cannot serve the HTTP API on {self._host}:{self._port} ({exc.strerror or exc}):"
                " choose another METERPIPE_HTTP_PORT, or 0 for a free one"
            ) from exc
        return sock

    def stop(self, timeout: float) -> None:
        """Stop accepting requests and wait up to `timeout` for those in flight."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
