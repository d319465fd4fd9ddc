"""/metrics, /healthz and /readyz, and JSON log lines."""

from __future__ import annotations

import json
import logging
import socket

import pytest
from prometheus_client import CollectorRegistry, Counter

from meterpipe.errors import ConfigError
from meterpipe.http import Readiness, serve_http
from meterpipe.logs import JsonFormatter
from tests.processes import http_get


def test_endpoints_report_liveness_readiness_and_metrics() -> None:
    registry = CollectorRegistry()
    Counter("meterpipe_probe", "A probe counter.", registry=registry).inc(3)
    readiness = Readiness("kafka", "store")
    port = serve_http("127.0.0.1", 0, readiness, registry)
    assert http_get(port, "/healthz")[0] == 200
    status, body = http_get(port, "/readyz")
    waiting = {"ready": False, "waitingFor": ["kafka", "store"], "errors": {}}
    assert (status, json.loads(body)) == (503, waiting)
    readiness.set("kafka", True)
    readiness.set("store", False, "connection refused")
    status, body = http_get(port, "/readyz")
    waiting = {"ready": False, "waitingFor": ["store"], "errors": {"store": "connection refused"}}
    assert (status, json.loads(body)) == (503, waiting)
    readiness.set("store", True)
    assert http_get(port, "/readyz") == (200, b'{"ready": true, "waitingFor": [], "errors": {}}')
    assert b"meterpipe_probe_total 3.0" in http_get(port, "/metrics")[1]
    assert http_get(port, "/nope")[0] == 404


def test_a_port_in_use_is_a_config_error_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port} .*METERPIPE_METRICS_PORT"):
            serve_http("127.0.0.1", port, Readiness(), CollectorRegistry())


def test_json_log_lines_carry_extra_fields() -> None:
    record = logging.LogRecord(
        "consumers.consumer", logging.INFO, "x.py", 1, "batch %s", ("ok",), None
    )
    record.partition = 4
    line = json.loads(JsonFormatter().format(record))
    assert (line["message"], line["level"], line["partition"]) == ("batch ok", "INFO", 4)
    assert "args" not in line
