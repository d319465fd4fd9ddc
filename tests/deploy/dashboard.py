"""The Grafana dashboard's PromQL queries, as Prometheus can evaluate them."""

from __future__ import annotations

import json
from typing import Any

from tests.deploy.deployfiles import DEPLOY

__all__ = ["DASHBOARD", "dashboard", "dashboard_queries"]

DASHBOARD = DEPLOY / "grafana" / "meterpipe.json"


def dashboard() -> dict[str, Any]:
    """The dashboard JSON."""
    document: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return document


def dashboard_queries(rate_interval: str = "1m") -> dict[str, str]:
    """{"<panel title> / <refId>": expr} with Grafana's `$__rate_interval` replaced."""
    return {
        f"{panel['title']} / {target['refId']}": target["expr"].replace(
            "$__rate_interval", rate_interval
        )
        for panel in dashboard()["panels"]
        for target in panel.get("targets", [])
    }
