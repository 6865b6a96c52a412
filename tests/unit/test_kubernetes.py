"""The Kubernetes manifests parse, have the parts production needs, and set only known settings."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.settings import ENV_VARS, SETTINGS

K8S = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
SECRET_ENV = {s.env for s in SETTINGS if s.secret}


@cache
def load(name: str) -> list[dict[str, Any]]:
    with (K8S / name).open() as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]  # read-only use


def manifests() -> list[dict[str, Any]]:
    kustomization = load("kustomization.yaml")[0]
    return [doc for name in kustomization["resources"] for doc in load(name)]


def only(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [m for m in manifests() if m["kind"] == kind and name in (None, m["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    return list(workload["spec"]["template"]["spec"]["containers"])


def config_data() -> dict[str, str]:
    return dict(only("ConfigMap")["data"])


def test_kustomization_lists_every_manifest_file() -> None:
    listed = set(load("kustomization.yaml")[0]["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


def test_the_expected_kinds_are_there() -> None:
    kinds = sorted(m["kind"] for m in manifests())
    assert kinds == sorted(
        [
            "Namespace",
            "ConfigMap",
            "Secret",
            "Service",
            "Service",
            "StatefulSet",
            "Deployment",
            "PodDisruptionBudget",
            "PodDisruptionBudget",
            "HorizontalPodAutoscaler",
        ]
    )
    for manifest in manifests():
        assert manifest.get("apiVersion") and manifest["metadata"].get("name")


def test_worker_statefulset_keeps_rocksdb_on_a_volume_with_standbys() -> None:
    worker = only("StatefulSet", "touchpoint-worker")
    spec = worker["spec"]
    service = only("Service", spec["serviceName"])
    assert service["spec"]["clusterIP"] == "None"  # headless
    [claim] = spec["volumeClaimTemplates"]
    [container] = containers(worker)
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == config_data()["TOUCHPOINT_DATA_DIR"]
    assert config_data()["TOUCHPOINT_STANDBY_REPLICAS"] == "1"
    assert config_data()["TOUCHPOINT_STORE"] == "rocksdb://"
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] >= 30


def port_number(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in container["ports"] if p["name"] == port)


def test_worker_probes_metrics_and_resources() -> None:
    worker = only("StatefulSet", "touchpoint-worker")
    [container] = containers(worker)
    web = int(config_data()["TOUCHPOINT_WORKER_WEB_PORT"])
    ready, live = container["readinessProbe"]["httpGet"], container["livenessProbe"]["httpGet"]
    assert ready["path"] == "/readyz" and port_number(container, ready["port"]) == web == 6066
    assert live["path"] == "/healthz" and port_number(container, live["port"]) == web
    metrics = int(config_data()["TOUCHPOINT_METRICS_PORT"])
    assert metrics == 9464
    assert metrics in {p["containerPort"] for p in container["ports"]}
    annotations = worker["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(metrics)
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    assert set(container["resources"]["limits"]) == {"cpu", "memory"}


def test_collector_deployment_probes_and_limits() -> None:
    collector = only("Deployment", "touchpoint-collector")
    assert collector["spec"]["replicas"] == 2
    [container] = containers(collector)
    port = int(config_data()["TOUCHPOINT_COLLECTOR_PORT"])
    assert port == 8080
    ready, live = container["readinessProbe"]["httpGet"], container["livenessProbe"]["httpGet"]
    assert ready["path"] == "/readyz" and port_number(container, ready["port"]) == port
    assert live["path"] == "/healthz" and port_number(container, live["port"]) == port
    assert set(container["resources"]["limits"]) == {"cpu", "memory"}
    assert config_data()["TOUCHPOINT_COLLECTOR_HOST"] == "0.0.0.0"  # noqa: S104 - in a pod
    service = only("Service", "touchpoint-collector")
    assert service["spec"]["selector"] == collector["spec"]["selector"]["matchLabels"]
    hpa = only("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "touchpoint-collector"
    assert hpa["spec"]["minReplicas"] >= 2


def test_disruption_budgets_select_real_pods() -> None:
    labels = [
        w["spec"]["template"]["metadata"]["labels"]
        for w in manifests()
        if w["kind"] in {"StatefulSet", "Deployment"}
    ]
    for pdb in (m for m in manifests() if m["kind"] == "PodDisruptionBudget"):
        wanted = pdb["spec"]["selector"]["matchLabels"]
        assert any(wanted.items() <= pod.items() for pod in labels), pdb["metadata"]["name"]


@pytest.mark.parametrize("kind", ["StatefulSet", "Deployment"])
def test_every_environment_variable_is_a_known_setting(kind: str) -> None:
    workload = only(kind)
    by_name = {(m["kind"], m["metadata"]["name"]): m for m in manifests()}
    for container in containers(workload):
        names = {e["name"] for e in container.get("env", [])}
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                names |= set(by_name[("ConfigMap", source["configMapRef"]["name"])]["data"])
            if "secretRef" in source:
                secret = by_name[("Secret", source["secretRef"]["name"])]
                names |= set(secret.get("stringData", {})) | set(secret.get("data", {}))
        assert names, f"{kind} sets no settings"
        assert names <= ENV_VARS, f"unknown settings in {kind}: {sorted(names - ENV_VARS)}"


def test_secrets_live_in_the_secret_and_nothing_else_does() -> None:
    secret = only("Secret")
    keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    assert keys == SECRET_ENV
    assert not set(config_data()) & SECRET_ENV
