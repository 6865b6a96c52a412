"""The Kubernetes manifests parse, have the parts production needs, and set only known settings."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.agents.web import KAFKA_PROBE_TIMEOUT
from streams.collector.handlers import READY_TIMEOUT_SECONDS
from streams.settings import ENV_VARS, SETTINGS

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
PROMETHEUS_K8S = ROOT / "deploy" / "prometheus" / "prometheus-kubernetes.yml"
RULES = ROOT / "deploy" / "prometheus" / "rules" / "touchpoint.rules.yml"
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


def test_readiness_probes_wait_longer_than_the_checks_behind_them() -> None:
    """A probe that times out before /readyz answers marks a healthy pod unready.

    The collector's /readyz checks Kafka and Redis (which it only reports) at once, each
    for up to READY_TIMEOUT_SECONDS; the worker's tries each broker in turn for up to
    KAFKA_PROBE_TIMEOUT.
    """
    [collector] = containers(only("Deployment", "touchpoint-collector"))
    # the collector's /readyz runs its Kafka and Redis checks at once (handlers.readyz)
    assert collector["readinessProbe"]["timeoutSeconds"] > READY_TIMEOUT_SECONDS
    [worker] = containers(only("StatefulSet", "touchpoint-worker"))
    brokers = config_data()["TOUCHPOINT_KAFKA_BROKERS"].split(",")
    assert worker["readinessProbe"]["timeoutSeconds"] > len(brokers) * KAFKA_PROBE_TIMEOUT
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert worker[probe].get("timeoutSeconds", 1) >= 5, probe


def _jobs_in_rules() -> set[str]:
    import re

    return set(re.findall(r'job="([^"]+)"', RULES.read_text()))


def test_prometheus_finds_every_pod_under_the_job_names_the_alerts_use() -> None:
    """deploy/prometheus/prometheus-kubernetes.yml scrapes the pods as the rules expect.

    Each job resolves the DNS name of a headless Service of these manifests that
    publishes not-ready pods too (so a failing pod is up == 0, not gone), on the
    container port that serves /metrics.
    """
    scrape = yaml.safe_load(PROMETHEUS_K8S.read_text())["scrape_configs"]
    jobs = {job["job_name"]: job for job in scrape}
    assert _jobs_in_rules() == {"touchpoint-worker", "touchpoint-collector"}
    assert _jobs_in_rules() <= set(jobs)
    namespace = load("kustomization.yaml")[0]["namespace"]
    workloads = {
        "touchpoint-worker": (only("StatefulSet", "touchpoint-worker"), 9464),
        "touchpoint-collector": (only("Deployment", "touchpoint-collector"), 8080),
    }
    for job_name, (workload, metrics_port) in workloads.items():
        [sd] = jobs[job_name]["dns_sd_configs"]
        [dns_name] = sd["names"]
        service_name, ns, *_ = dns_name.split(".")
        assert ns == namespace, dns_name
        service = only("Service", service_name)
        assert service["spec"]["clusterIP"] == "None", f"{service_name} must be headless"
        assert service["spec"]["publishNotReadyAddresses"] is True, service_name
        pod_labels = workload["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= pod_labels.items(), service_name
        assert sd["port"] == metrics_port
        [container] = containers(workload)
        [target] = [p["targetPort"] for p in service["spec"]["ports"]]
        assert port_number(container, target) == metrics_port
        assert jobs[job_name].get("metrics_path", "/metrics") == "/metrics"


def test_pods_carry_no_scrape_annotations_that_would_double_every_series() -> None:
    for workload in (only("StatefulSet"), only("Deployment")):
        annotations = workload["spec"]["template"]["metadata"].get("annotations", {})
        assert not [a for a in annotations if a.startswith("prometheus.io/")]
