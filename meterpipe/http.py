"""The HTTP endpoint of every long-running process: /metrics, /healthz and /readyz.

/healthz answers 200 while the process serves requests at all (liveness). /readyz answers
200 only when the process can do its work: connected to Kafka with its partitions
assigned and its store reachable; otherwise 503 with the conditions it waits for and the
last error of each (the store's, while it is unreachable), so an orchestrator keeps
traffic and rollouts away from it and an operator sees why.
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
        self._missing: dict[str, str | None] = dict.fromkeys(conditions)

    def set(self, condition: str, ok: bool, error: str | None = None) -> None:
        """Mark one condition met (ok) or not, with the error that keeps it unmet, if known."""
        with self._lock:
            if ok:
                self._missing.pop(condition, None)
            else:
                self._missing[condition] = error

    def report(self) -> dict[str, object]:
        """What /readyz says: ready or not, the conditions waited for, and their errors."""
        with self._lock:
            waiting = sorted(self._missing.items())
        return {
            "ready": not waiting,
            "waitingFor": [condition for condition, _ in waiting],
            "errors": {condition: error for condition, error in waiting if error is not None},
        }


def _handler(registry: CollectorRegistry, readiness: Readiness) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._reply(200, b'{"status":"ok"}', "application/json")
            elif path == "/readyz":
                report = readiness.report()
                body = json.dumps(report).encode()
                self._reply(200 if report["ready"] else 503, body, "application/json")
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
