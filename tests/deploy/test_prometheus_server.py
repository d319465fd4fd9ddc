"""A real Prometheus server scraping a real `meterpipe up` through one upload.

Prometheus runs with this repository's alerts and a 1 s scrape interval; the test waits on
conditions (no fixed sleeps) and checks what Prometheus itself recorded.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from meterpipe.broker import free_port
from meterpipe.sample_data import SampleSpec, write_sample_file
from tests.deploy.dashboard import dashboard_queries
from tests.deploy.deployfiles import DEPLOY, load_yaml, require_prometheus_tool
from tests.processes import all_final, metrics_port, start_cli, stop, wait_for

pytestmark = pytest.mark.slow

ROWS = 5_000
PEAK_CONSUMED_RATE = "max_over_time(rate(meterpipe_events_consumed_total[5s])[10m:1s])"
JOB = "meterpipe-watcher"
# Labelled metrics have no series until something happens (no bad event in this run; lag
# is reported from librdkafka statistics every 5 s): their dashboard queries may be empty.
MAY_BE_EMPTY = ("meterpipe_events_invalid_total", "meterpipe_rows_invalid_total",
                "meterpipe_consumer_lag")  # fmt: skip


class PrometheusApi:
    """The few calls of the HTTP API the test needs."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path: str, **params: str) -> Any:
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            body: dict[str, Any] = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def ready(self) -> bool:
        return _answers(f"{self.base}/-/ready")

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.get("/api/v1/query", query=expr)
        assert data["resultType"] == "vector", data
        result: list[dict[str, Any]] = data["result"]
        return result

    def scalar(self, expr: str) -> float | None:
        """The value of a one-series query, None while there is none."""
        result = self.query(expr)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None


def _answers(url: str) -> bool:
    """The URL answers 200 (not yet listening, or 503 while starting: False)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError):
        return False


def _alive(process: subprocess.Popen[bytes], log: str) -> bool:
    """True while the process runs; fails at once, pointing at its log, if it exited."""
    if process.poll() is not None:
        raise AssertionError(f"exited early with code {process.returncode}: see {log}")
    return True


def _prometheus_config(tmp_path: Path, metrics_port: int) -> Path:
    """deploy/prometheus/prometheus.yml with a 1 s interval and the local meterpipe target."""
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(DEPLOY / "prometheus" / name) for name in config["rule_files"]]
    config["scrape_configs"] = [
        {"job_name": JOB, "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}
    ]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _start_prometheus(tmp_path: Path, config: Path, port: int) -> subprocess.Popen[bytes]:
    binary = require_prometheus_tool("prometheus")
    with (tmp_path / "prometheus.log").open("ab") as log:
        return subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip


def _drop(source: Path, inbox: Path) -> None:
    """Copy under a name the watcher ignores, then rename: it never sees half a file."""
    partial = inbox / f"{source.name}.part"
    shutil.copy(source, partial)
    partial.rename(inbox / source.name)


def test_prometheus_records_an_upload_going_through(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    prometheus_port = free_port()
    env = dict(pipeline_env)  # METERPIPE_METRICS_PORT=0: the port is read from the log
    inbox = Path(env["METERPIPE_INBOX"])
    inbox.mkdir()
    source = tmp_path / "usage.csv"
    write_sample_file(source, SampleSpec(rows=ROWS, seed=11, accounts=50))
    api = PrometheusApi(prometheus_port)
    meterpipe = start_cli(env, tmp_path / "up.log", "up")
    prometheus: subprocess.Popen[bytes] | None = None
    try:
        port = metrics_port(meterpipe, tmp_path / "up.log")
        metrics_url = f"http://127.0.0.1:{port}/metrics"
        wait_for(lambda: _alive(meterpipe, "up.log") and _answers(metrics_url), 120, "/metrics")
        config = _prometheus_config(tmp_path, port)
        prometheus = _start_prometheus(tmp_path, config, prometheus_port)
        server = prometheus
        wait_for(lambda: _alive(server, "prometheus.log") and api.ready(), 120, "Prometheus")
        wait_for(lambda: api.scalar(f'up{{job="{JOB}"}}') == 1, 120, "target scraped and up")
        # Scraped before the file arrives: the consumed counter's increase is recorded.
        assert api.scalar("meterpipe_events_consumed_total") == 0

        _drop(source, inbox)
        (upload,) = wait_for(lambda: all_final(env, 1), 180, "upload Done")
        assert upload["status"] == "Done"

        wait_for(
            lambda: api.scalar("meterpipe_events_published_total") == ROWS, 60,
            f"Prometheus to record {ROWS} published events",
        )  # fmt: skip
        wait_for(
            lambda: api.scalar('meterpipe_uploads{status="Done"}') == 1, 60,
            "Prometheus to record the upload Done",
        )  # fmt: skip
        # Subquery steps are aligned to whole seconds: the last scrape shows a step later.
        wait_for(
            lambda: (api.scalar(PEAK_CONSUMED_RATE) or 0) > 0, 60,
            "a consumption rate above 0 in Prometheus",
        )  # fmt: skip
        # The sample's duplicates carry their own quantities: conflicts, which the alert reports.
        assert upload["conflicts"] > 0
        _check_rules_evaluate(api, firing={"MeterpipeConflictingDuplicates"})
        _check_dashboard_queries(api)
    finally:
        if prometheus is not None:
            stop(prometheus)
        stop(meterpipe)
    assert meterpipe.returncode == 0
    assert prometheus.returncode == 0


def _check_rules_evaluate(api: PrometheusApi, firing: set[str]) -> None:
    """Prometheus loaded every alert and evaluates it without error; once Done, the `firing`
    ones fire and no other does.

    While the upload was Processing some alerts may have been pending (their `for` is minutes
    long); with everything Done they settle.
    """
    expected = {
        rule["alert"]
        for group in load_yaml(DEPLOY / "prometheus" / "alerts.yml")["groups"]
        for rule in group["rules"]
    }

    def settled() -> bool:
        rules = [r for g in api.get("/api/v1/rules")["groups"] for r in g["rules"]]
        assert {rule["name"] for rule in rules} == expected
        evaluated = [r for r in rules if not r["lastEvaluation"].startswith("0001-")]
        assert all(rule["health"] == "ok" for rule in evaluated), evaluated
        states = {rule["name"]: rule["state"] for rule in rules}
        wanted = {name: "firing" if name in firing else "inactive" for name in expected}
        return len(evaluated) == len(rules) and states == wanted

    wait_for(settled, 60, f"every alert rule evaluated and healthy, only {sorted(firing)} firing")


def _check_dashboard_queries(api: PrometheusApi) -> None:
    """Every dashboard query runs (no matching errors at evaluation time) and shows data."""
    for where, expr in dashboard_queries(rate_interval="10s").items():
        result = api.query(expr)
        if not any(name in expr for name in MAY_BE_EMPTY):
            assert result, f"dashboard query {where} returned nothing: {expr}"
