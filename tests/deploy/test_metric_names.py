"""Every metric (and label) the alerts and the dashboard use is one meterpipe exports.

The names come from the code itself: `PipelineMetrics` and `UploadStatusCollector` registered
in a fresh registry. Renaming a metric or a label in meterpipe/metrics.py fails this test
until the alerts and the dashboard follow.
"""

from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from meterpipe.metrics import UPLOAD_STATUSES, PipelineMetrics, UploadStatusCollector
from tests.deploy.dashboard import dashboard_queries
from tests.deploy.deployfiles import DEPLOY, load_yaml

SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
}
# Labels Prometheus adds to every scraped series, and the histogram bucket label.
TARGET_LABELS = {"job", "instance"}
NAME = re.compile(r"\bmeterpipe_\w+")
SELECTOR = re.compile(r"\b(meterpipe_\w+)\s*\{([^}]*)\}")
MATCHER = re.compile(r"(\w+)\s*(=~|!~|!=|=)\s*\"([^\"]*)\"")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def _exported() -> dict[str, set[str]]:
    """{sample name: label names} of everything meterpipe exports."""
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry=registry)
    registry.register(UploadStatusCollector(dict))
    # Labelled metrics export no sample before their first child: read their label names.
    declared = {
        metric._name: set(metric._labelnames)
        for metric in vars(metrics).values()
        if isinstance(metric, MetricWrapperBase)
    }
    exported: dict[str, set[str]] = {}
    for family in registry.collect():
        labels = {label for sample in family.samples for label in sample.labels} - {"le"}
        labels |= declared.get(family.name, set())
        for suffix in SUFFIXES[family.type]:
            exported[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return exported


def _expressions() -> dict[str, str]:
    alerts = {
        f"alert {rule['alert']}": rule["expr"]
        for group in load_yaml(DEPLOY / "prometheus" / "alerts.yml")["groups"]
        for rule in group["rules"]
    }
    return alerts | {f"dashboard {key}": expr for key, expr in dashboard_queries().items()}


def test_the_code_exports_what_the_readme_lists() -> None:
    """Guards the collection above: it must see counters, histograms, gauges and labels."""
    exported = _exported()
    assert exported["meterpipe_events_consumed_total"] == set()
    assert exported["meterpipe_events_invalid_total"] == {"reason"}
    assert exported["meterpipe_batch_duration_seconds_bucket"] == {"le"}
    assert exported["meterpipe_consumer_lag"] == {"topic", "partition"}
    assert exported["meterpipe_uploads"] == {"status"}


def test_the_expressions_name_meterpipe_metrics() -> None:
    used = {name for expr in _expressions().values() for name in NAME.findall(expr)}
    assert len(used) >= 10


@pytest.mark.parametrize("where", sorted(_expressions()))
def test_metric_names_exist(where: str) -> None:
    expr = _expressions()[where]
    unknown = set(NAME.findall(expr)) - set(_exported())
    assert not unknown, f"{where} uses metrics meterpipe does not export: {sorted(unknown)}"


@pytest.mark.parametrize("where", sorted(_expressions()))
def test_label_names_and_statuses_exist(where: str) -> None:
    expr = _expressions()[where]
    exported = _exported()
    available = TARGET_LABELS.union(*(exported.get(n, set()) for n in NAME.findall(expr)))
    for metric, matchers in SELECTOR.findall(expr):
        for label, _, value in MATCHER.findall(matchers):
            assert label in exported.get(metric, set()) | TARGET_LABELS, f"{metric}{{{label}}}"
            if label == "status":
                assert set(value.split("|")) <= set(UPLOAD_STATUSES), value
    for grouping in GROUPING.findall(expr):
        labels = {label.strip() for label in grouping.split(",") if label.strip()}
        assert labels <= available, f"{where}: by ({grouping})"
