"""deploy/compose.yaml: valid per the compose specification, and wired together consistently."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.deploy.deployfiles import DEPLOY, load_yaml

COMPOSE = DEPLOY / "compose.yaml"
METRICS_PORT = "9108"
ONE_SHOT = {"inbox-init"}


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(COMPOSE)
    return document


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return services


def _meterpipe_services() -> dict[str, dict[str, Any]]:
    """Long-running services built from deploy/Dockerfile."""
    return {
        name: service
        for name, service in _services().items()
        if "build" in service and name not in ONE_SHOT
    }


def _command(service: dict[str, Any]) -> list[str]:
    command: list[str] = service["command"]
    return command


def _dockerfile_env(name: str) -> str:
    match = re.search(rf"\b{name}=(\S+)", (DEPLOY / "Dockerfile").read_text(encoding="utf-8"))
    assert match, name
    return match.group(1)


def _bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    """{container path: host path relative to deploy/} of the service's bind mounts."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("."):
            mounts[target] = source
    return mounts


def test_validates_against_the_compose_specification() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(COMPOSE)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_pipeline_services_are_there() -> None:
    services = _meterpipe_services()
    assert _command(services["watcher"]) == ["meterpipe", "up"]
    assert _command(services["consumer"]) == ["meterpipe", "consume"]
    assert services["consumer"]["deploy"]["replicas"] == 2
    assert _command(services["api"]) == ["meterpipe", "serve"]
    assert services["api"]["environment"]["METERPIPE_HTTP_HOST"] == "0.0.0.0"
    assert services["api"]["ports"] == [
        f"{services['api']['environment']['METERPIPE_HTTP_PORT']}:8080"
    ]
    assert {"kafka", "postgres", "prometheus", "grafana"} <= set(_services())


def test_images_are_pinned() -> None:
    for name, service in _services().items():
        image = service["image"]
        assert re.fullmatch(r"[\w./-]+:v?\d[\w.-]*", image), f"{name}: {image} is not pinned"
    assert _services()["kafka"]["image"].startswith("apache/kafka:")


@pytest.mark.parametrize("name", sorted(set(_services()) - ONE_SHOT))
def test_long_running_services_are_health_checked(name: str) -> None:
    healthcheck = _services()[name]["healthcheck"]
    assert not healthcheck.get("disable", False)
    assert healthcheck["test"][0] in {"CMD", "CMD-SHELL"}


@pytest.mark.parametrize("name", sorted(_meterpipe_services()))
def test_meterpipe_services_use_kafka_and_postgres(name: str) -> None:
    service = _meterpipe_services()[name]
    env = service["environment"]
    kafka_env = _services()["kafka"]["environment"]
    internal = [
        listener.split("://")[1]
        for listener in kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(",")
        if listener.startswith(kafka_env["KAFKA_INTER_BROKER_LISTENER_NAME"] + "://")
    ]
    assert env["METERPIPE_BOOTSTRAP_SERVERS"] == internal[0]
    assert internal[0].split(":")[0] == "kafka"
    store = urlsplit(env["METERPIPE_STORE_URL"])
    postgres_env = _services()["postgres"]["environment"]
    assert store.scheme == "postgresql"
    assert (store.hostname, store.username) == ("postgres", postgres_env["POSTGRES_USER"])
    assert store.path == "/" + postgres_env["POSTGRES_DB"]
    assert env["METERPIPE_METRICS_PORT"] == METRICS_PORT
    assert service["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert METRICS_PORT in " ".join(service["healthcheck"]["test"])
    build = service["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"


def test_watcher_mounts_the_inbox_it_watches() -> None:
    watcher = _services()["watcher"]
    inbox = _dockerfile_env("METERPIPE_INBOX")
    assert watcher["environment"].get("METERPIPE_INBOX", inbox) == inbox
    assert _bind_mounts(watcher)[inbox] == "../inbox"
    init = _services()["inbox-init"]
    assert _bind_mounts(init)[inbox] == "../inbox"
    assert watcher["depends_on"]["inbox-init"]["condition"] == "service_completed_successfully"


def test_prometheus_scrapes_every_meterpipe_service() -> None:
    prometheus = _services()["prometheus"]
    config_dir = next(
        DEPLOY / host for target, host in _bind_mounts(prometheus).items()
        if target == "/etc/prometheus"
    )  # fmt: skip
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    config = load_yaml(config_dir / "prometheus.yml")
    scraped: set[str] = set()
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            scraped.update(
                t.removesuffix(f":{METRICS_PORT}") for t in static["targets"]
                if t.endswith(f":{METRICS_PORT}")
            )  # fmt: skip
        for dns in job.get("dns_sd_configs", []):
            if str(dns["port"]) == METRICS_PORT:
                scraped.update(dns["names"])
    assert set(_meterpipe_services()) <= scraped


def test_grafana_provisioning_points_at_the_mounted_files() -> None:
    grafana = _services()["grafana"]
    mounts = _bind_mounts(grafana)
    for host in mounts.values():
        assert (DEPLOY / host).exists(), host
    provisioning = DEPLOY / mounts["/etc/grafana/provisioning"]
    (provider,) = load_yaml(provisioning / "dashboards" / "meterpipe.yaml")["providers"]
    dashboards = {PurePosixPath(t).parent: h for t, h in mounts.items() if t.endswith(".json")}
    assert Path(dashboards[PurePosixPath(provider["options"]["path"])]).name == "meterpipe.json"
    (datasource,) = load_yaml(provisioning / "datasources" / "prometheus.yaml")["datasources"]
    assert urlsplit(datasource["url"]).hostname == "prometheus"
    assert urlsplit(datasource["url"]).port == 9090
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert PurePosixPath(home) in {PurePosixPath(t) for t in mounts}
