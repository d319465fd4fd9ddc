"""The suite's own PostgreSQL server: Debian's binaries, a temporary directory, a free port.

No test depends on a server a machine happens to run. Each test process starts one server the
first time a test asks for PostgreSQL and stops it when the session ends; a test that restarts
PostgreSQL under running consumers starts a server of its own. PostgreSQL refuses to run as
root, so as root the server runs as the `postgres` system user that Debian's package creates.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

INSTALL_HINT = (
    "PostgreSQL's server binaries are missing: run `sudo bash deploy/install-tools.sh` "
    "(or `sudo apt-get install postgresql`)"
)


def _bin_dir() -> Path:
    """The newest installed PostgreSQL's bin directory (Debian keeps one per major version)."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parent.parent.name),
    )
    if versions:
        return versions[-1].parent
    found = shutil.which("initdb")
    if found is None:
        raise RuntimeError(INSTALL_HINT)
    return Path(found).resolve().parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory, on a free loopback port.

    Tuned for tests (no fsync): a lost machine loses nothing a test needs, and the suite runs
    on two cores.
    """

    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="meterpipe-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",
            "max_connections": "300",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "256MB",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        self.start()

    @property
    def url(self) -> str:
        """The URL of its `postgres` database, as the superuser."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run(
            [*self._as_user, str(self.bin / program), *args],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{program} failed: {done.stdout}{done.stderr}{log}")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.log))

    def stop(self) -> None:
        """Stop it at once: open sessions are ended, as when a database server goes down."""
        self._run("pg_ctl", "stop", "-w", "-t", "60", "-m", "fast", "-D", str(self.data))

    def close(self) -> None:
        """Stop it (if running) and delete its directory."""
        status = subprocess.run(
            [*self._as_user, str(self.bin / "pg_ctl"), "status", "-D", str(self.data)],
            capture_output=True, check=False,
        )  # fmt: skip
        if status.returncode == 0:
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_shared: PostgresServer | None = None


def shared_server() -> PostgresServer:
    """This test process's server, started on first use."""
    global _shared  # noqa: PLW0603
    if _shared is None:
        _shared = PostgresServer()
    return _shared


def close_shared_server() -> None:
    """Stop this test process's server if one was started."""
    global _shared  # noqa: PLW0603
    if _shared is not None:
        _shared.close()
        _shared = None
