"""The Grafana dashboard shows what the on-call needs, from the provisioned datasource."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.dashboard import dashboard
from tests.deploy.deployfiles import DEPLOY, load_yaml

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def _panels() -> list[dict[str, Any]]:
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def _exprs(title: str) -> list[str]:
    (panel,) = [panel for panel in _panels() if panel["title"] == title]
    return [target["expr"] for target in panel["targets"]]


def test_panels_query_the_datasource_variable() -> None:
    (variable,) = dashboard()["templating"]["list"]
    assert (variable["name"], variable["type"], variable["query"]) == (
        "datasource", "datasource", "prometheus",
    )  # fmt: skip
    for panel in _panels():
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        assert all(t["datasource"] == DATASOURCE for t in panel["targets"]), panel["title"]


def test_panel_ids_and_titles_are_unique_and_panels_fit_the_grid() -> None:
    ids = [panel["id"] for panel in dashboard()["panels"]]
    assert len(ids) == len(set(ids))
    titles = [panel["title"] for panel in _panels()]
    assert len(titles) == len(set(titles))
    for panel in dashboard()["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert grid["h"] > 0


def test_provisioned_datasource_is_prometheus() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    (datasource,) = load_yaml(provisioning / "datasources" / "prometheus.yaml")["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["isDefault"] is True
    assert dashboard()["uid"] == "meterpipe"


@pytest.mark.parametrize(
    ("title", "needles"),
    [
        ("Throughput", ["meterpipe_events_published_total", "meterpipe_events_consumed_total",
                        "meterpipe_events_accepted_total"]),
        ("Duplicates and redeliveries", ["meterpipe_events_duplicate_total"]),
        ("Invalid by reason", ["by (reason)", "meterpipe_events_invalid_total",
                               "meterpipe_rows_invalid_total"]),
        ("Lag per partition", ["meterpipe_consumer_lag", "partition"]),
        ("Batch latency", ["histogram_quantile(0.5,", "histogram_quantile(0.95,",
                           "histogram_quantile(0.99,", "meterpipe_batch_duration_seconds_bucket",
                           "by (le)"]),
        ("Uploads by status", ["meterpipe_uploads", "by (status)"]),
        ("Events per second", ["meterpipe_events_per_second"]),
    ],
)  # fmt: skip
def test_panel_shows(title: str, needles: list[str]) -> None:
    text = "\n".join(_exprs(title))
    for needle in needles:
        assert needle in text, f"{title}: {needle}"


def test_throughput_panels_are_per_second() -> None:
    for expr in _exprs("Throughput"):
        assert expr.startswith("sum(rate(")
        assert "[$__rate_interval]" in expr
