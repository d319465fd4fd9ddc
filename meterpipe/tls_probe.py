"""Why a broker's TLS certificate was not accepted, in the words of Python's `ssl` module.

librdkafka reports every failed verification as "certificate verify failed", whether the
certificate was signed by a CA the client does not trust or names another host. One TLS
handshake of our own, with the same CA and host name, tells the two apart.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

__all__ = ["certificate_problem"]

PROBE_TIMEOUT_S = 3.0


def _host_and_port(bootstrap: str) -> tuple[str, int]:
    first = bootstrap.split(",", maxsplit=1)[0].strip()
    first = first.split("://", 1)[-1]
    host, _, port = first.rpartition(":")
    return host.strip("[]"), int(port)


def certificate_problem(bootstrap: str, ca_location: str | None) -> str | None:
    """What is wrong with the certificate of the first bootstrap server, or None if nothing
    is (or the probe cannot tell)."""
    try:
        host, port = _host_and_port(bootstrap)
        location = Path(ca_location) if ca_location else None
        context = ssl.create_default_context(
            cafile=str(location) if location and location.is_file() else None,
            capath=str(location) if location and location.is_dir() else None,
        )
        with (
            socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S) as sock,
            context.wrap_socket(sock, server_hostname=host),
        ):
            return None
    except ssl.SSLCertVerificationError as exc:
        return str(exc.verify_message)
    except (OSError, ValueError):
        return None
