"""Prometheus configuration and alerts: promtool's checks and unit tests, and their coverage."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.dashboard import dashboard_queries
from tests.deploy.deployfiles import DEPLOY, load_yaml, require_prometheus_tool

PROMETHEUS = DEPLOY / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
ALERTS_TEST = PROMETHEUS / "alerts_test.yml"
SEVERITIES = {"warning", "critical"}


def _promtool(*args: str) -> str:
    done = subprocess.run(
        [require_prometheus_tool("promtool"), *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"promtool {' '.join(args)} failed:\n{output}"
    return output


def _alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]


def test_promtool_check_config() -> None:
    output = _promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert "1 rule files found" in output


def test_promtool_check_rules() -> None:
    output = _promtool("check", "rules", str(ALERTS))
    assert f"{len(_alert_rules())} rules found" in output


def test_promtool_test_rules() -> None:
    assert "SUCCESS" in _promtool("test", "rules", str(ALERTS_TEST))


def test_the_alerts_an_on_call_needs_exist() -> None:
    expressions = {rule["alert"]: rule["expr"] for rule in _alert_rules()}
    assert len(expressions) == len(_alert_rules()), "duplicate alert names"
    wanted = {
        "MeterpipeConsumerLagGrowing": "meterpipe_consumer_lag",
        "MeterpipeNoEventsConsumed": "meterpipe_events_consumed_total",
        "MeterpipeDeadLetterRateHigh": "meterpipe_events_invalid_total",
        "MeterpipeUploadStuckProcessing": 'meterpipe_uploads{status="Processing"}',
        "MeterpipeProcessDown": "up{",
        "MeterpipeConflictingDuplicates": "meterpipe_events_conflicting_total",
    }
    assert set(expressions) == set(wanted)
    for name, needle in wanted.items():
        assert needle in expressions[name], name


@pytest.mark.parametrize("rule", _alert_rules(), ids=lambda rule: str(rule["alert"]))
def test_alert_has_severity_and_annotations(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in SEVERITIES
    assert {"summary", "description", "runbook"} <= set(rule["annotations"])
    assert all(text.strip() for text in rule["annotations"].values())


@pytest.mark.parametrize("rule", _alert_rules(), ids=lambda rule: str(rule["alert"]))
def test_alert_is_unit_tested_firing_and_not_firing(rule: dict[str, Any]) -> None:
    cases = [
        case
        for test in load_yaml(ALERTS_TEST)["tests"]
        for case in test.get("alert_rule_test", [])
        if case["alertname"] == rule["alert"]
    ]
    assert any(case.get("exp_alerts") for case in cases), "no case where it fires"
    assert any(not case.get("exp_alerts") for case in cases), "no case where it stays quiet"


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool has no expression checker: the queries become recording rules it parses."""
    queries = dashboard_queries()
    assert queries
    rules = {
        "groups": [{
            "name": "dashboard",
            "rules": [
                {"record": f"dashboard:query_{n}", "expr": expr}
                for n, expr in enumerate(queries.values())
            ],
        }]
    }  # fmt: skip
    rule_file = tmp_path / "dashboard_rules.yml"
    rule_file.write_text(yaml.safe_dump(rules), encoding="utf-8")
    assert f"{len(queries)} rules found" in _promtool("check", "rules", str(rule_file))
