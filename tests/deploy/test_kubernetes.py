"""deploy/kubernetes: schema-valid manifests (kubernetes-validate) that refer to each other.

kubernetes-validate bundles the Kubernetes JSON schemas but none for custom resources: for an
unknown kind it only warns. The Prometheus Operator's ServiceMonitor and PrometheusRule are
skipped that way (and checked by hand below); a warning for any other kind fails the test.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.deployfiles import DEPLOY, load_yaml, load_yaml_documents

KUBERNETES = DEPLOY / "kubernetes"
KUSTOMIZATION = KUBERNETES / "kustomization.yaml"
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}
# The oldest and the newest Kubernetes versions whose schemas kubernetes-validate bundles
# that we support.
KUBERNETES_VERSIONS = ["1.29.0", "1.37.0"]
METRICS_PATH = "/metrics"


def _resource_files() -> list[Path]:
    resources: list[str] = load_yaml(KUSTOMIZATION)["resources"]
    return [KUBERNETES / name for name in resources]


def _resources() -> list[dict[str, Any]]:
    return [doc for path in _resource_files() for doc in load_yaml_documents(path)]


def _one(kind: str, name: str) -> dict[str, Any]:
    (found,) = [r for r in _resources() if r["kind"] == kind and r["metadata"]["name"] == name]
    return found


def _of_kind(kind: str) -> list[dict[str, Any]]:
    return [r for r in _resources() if r["kind"] == kind]


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = container
    return result


def _config() -> dict[str, str]:
    data: dict[str, str] = _one("ConfigMap", "meterpipe-config")["data"]
    return data


def test_kustomization_lists_every_manifest() -> None:
    on_disk = {p for p in KUBERNETES.glob("*.yaml") if p != KUSTOMIZATION}
    assert set(_resource_files()) == on_disk
    kustomization = load_yaml(KUSTOMIZATION)
    assert kustomization["kind"] == "Kustomization"
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert [image["name"] for image in kustomization["images"]] == ["meterpipe"]


def test_manifests_validate_against_the_kubernetes_schemas() -> None:
    versions = [arg for version in KUBERNETES_VERSIONS for arg in ("-k", version)]
    done = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", *versions,
         *map(str, _resource_files())],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    skipped = set(re.findall(r"^WARN .* schema for kind (\S+) ", output, flags=re.MULTILINE))
    assert skipped <= CUSTOM_KINDS, output
    passed = len(re.findall(r"^INFO .* passed for resource", output, flags=re.MULTILINE))
    checked = [r for r in _resources() if r["kind"] not in CUSTOM_KINDS]
    assert passed == len(checked) * len(KUBERNETES_VERSIONS), output


@pytest.mark.parametrize("name", ["meterpipe-watcher", "meterpipe-consumer", "meterpipe-api"])
def test_deployments_are_complete(name: str) -> None:
    deployment = _one("Deployment", name)
    spec = deployment["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    container = _container(deployment)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == int(_config()["METERPIPE_METRICS_PORT"])
    probes = {probe: container[probe]["httpGet"] for probe in ("livenessProbe", "readinessProbe")}
    assert probes == {
        "livenessProbe": {"path": "/healthz", "port": "metrics"},
        "readinessProbe": {"path": "/readyz", "port": "metrics"},
    }
    resources = container["resources"]
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}
    sources = {next(iter(s)): next(iter(s.values()))["name"] for s in container["envFrom"]}
    assert sources == {"configMapRef": "meterpipe-config", "secretRef": "meterpipe-secrets"}
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    mounts = {m["name"] for m in container["volumeMounts"]}
    assert mounts == {v["name"] for v in pod["volumes"]}


def test_watcher_uses_the_cluster_and_the_inbox_volume() -> None:
    watcher = _one("Deployment", "meterpipe-watcher")
    container = _container(watcher)
    assert container["args"] == ["meterpipe", "up"]
    # Set, so `meterpipe up` never starts its embedded broker.
    assert _config()["METERPIPE_BOOTSTRAP_SERVERS"]
    (inbox,) = [v for v in watcher["spec"]["template"]["spec"]["volumes"] if v["name"] == "inbox"]
    _one("PersistentVolumeClaim", inbox["persistentVolumeClaim"]["claimName"])
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["inbox"] == _config()["METERPIPE_INBOX"]
    assert watcher["spec"]["replicas"] == 1
    assert watcher["spec"]["strategy"]["type"] == "Recreate"


def test_consumers_scale_up_to_the_partition_count() -> None:
    consumer = _one("Deployment", "meterpipe-consumer")
    assert _container(consumer)["args"] == ["meterpipe", "consume"]
    assert consumer["spec"]["replicas"] == 3
    (hpa,) = _of_kind("HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "meterpipe-consumer")
    assert hpa["spec"]["minReplicas"] == 3
    assert hpa["spec"]["maxReplicas"] == int(_config()["METERPIPE_PARTITIONS"]) == 6


def test_secret_holds_the_store_url_and_sasl_password() -> None:
    secret = _one("Secret", "meterpipe-secrets")["stringData"]
    assert set(secret) == {"METERPIPE_STORE_URL", "METERPIPE_SASL_PASSWORD"}
    assert secret["METERPIPE_STORE_URL"].startswith("postgresql://")
    assert not set(secret) & set(_config())


def test_services_and_service_monitor_reach_the_metrics_port() -> None:
    pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in _of_kind("Deployment")]
    services = _of_kind("Service")
    assert {s["metadata"]["name"] for s in services} == {
        "meterpipe-watcher", "meterpipe-consumer", "meterpipe-api",
    }  # fmt: skip
    for service in services:
        selector = service["spec"]["selector"]
        assert sum(selector.items() <= labels.items() for labels in pod_labels) == 1
        ports = {port["name"]: port["targetPort"] for port in service["spec"]["ports"]}
        assert ports["metrics"] == "metrics"
    (monitor,) = _of_kind("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    wanted = monitor["spec"]["selector"]["matchLabels"]
    assert all(wanted.items() <= s["metadata"]["labels"].items() for s in services)
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("metrics", METRICS_PATH)


def test_prometheus_rule_carries_the_alerts_unchanged() -> None:
    (rule,) = _of_kind("PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    alerts = load_yaml(DEPLOY / "prometheus" / "alerts.yml")
    assert rule["spec"]["groups"] == alerts["groups"]


def test_api_serves_http_behind_its_service_and_ingress() -> None:
    api = _one("Deployment", "meterpipe-api")
    container = _container(api)
    assert container["args"] == ["meterpipe", "serve"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["METERPIPE_HTTP_HOST"] == "0.0.0.0"
    # Bodies arrive in the data dir and are claimed into the inbox: one volume, a rename.
    data = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}["data"]
    assert env["METERPIPE_INBOX"].startswith(data + "/")
    assert data == _config()["METERPIPE_DATA_DIR"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == int(_config()["METERPIPE_HTTP_PORT"])
    service = _one("Service", "meterpipe-api")
    assert {p["name"]: p["targetPort"] for p in service["spec"]["ports"]}["http"] == "http"
    (ingress,) = _of_kind("Ingress")
    (rule,) = ingress["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    backend = path["backend"]["service"]
    assert (backend["name"], backend["port"]["name"]) == ("meterpipe-api", "http")
