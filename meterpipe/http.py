"""The HTTP endpoint of every long-running process: /metrics, /healthz and /readyz.

/healthz answers 200 while the process serves requests at all (liveness). /readyz answers
200 only when the process can do its work: connected to Kafka with its partitions
assigned and its store reachable; otherwise 503 with the reasons, so an orchestrator
keeps traffic and rollouts away from it.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from meterpipe.errors import ConfigError

__all__ = ["Readiness", "serve_http"]


class Readiness:
    """Conditions a process needs before it is ready; components set and clear them."""

    def __init__(self, *conditions: str) -> None:
        self._lock = threading.Lock()
        self._missing = set(conditions)

    def set(self, condition: str, ok: bool) -> None:
        """Mark one condition met (ok) or not."""
        with self._lock:
            if ok:
                self._missing.discard(condition)
            else:
                self._missing.add(condition)

    def missing(self) -> list[str]:
        """The conditions not met now (empty when ready)."""
        with self._lock:
            return sorted(self._missing)


def _handler(registry: CollectorRegistry, readiness: Readiness) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._reply(200, b'{"status":"ok"}', "application/json")
            elif path == "/readyz":
                missing = readiness.missing()
                body = json.dumps({"ready": not missing, "waitingFor": missing}).encode()
                self._reply(503 if missing else 200, body, "application/json")
            else:
                self._reply(404, b"not found\n", "text/plain")

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Scrapes and probes are not worth a log line each."""

    return Handler


def serve_http(
    host: str, port: int, readiness: Readiness, registry: CollectorRegistry = REGISTRY
) -> int:
    """Serve the three endpoints in a daemon thread; return the bound port (port 0 picks).

    ConfigError if the address cannot be bound (a port in use, an unknown host).
    """
    try:
        server = ThreadingHTTPServer((host, port), _handler(registry, readiness))
    except OSError as exc:
        raise ConfigError(
            f"cannot serve metrics on {host}:{port} ({exc.strerror or exc}):"
            " choose another METERPIPE_METRICS_PORT, or 0 for a free one"
        ) from exc
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return int(server.server_port)
