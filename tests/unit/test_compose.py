"""docker-compose.yml stays consistent with the code: services, images, settings, mounts."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.settings import ENV_VARS

ROOT = Path(__file__).resolve().parents[2]
TOUCHPOINT_SERVICES = ("topics", "worker", "collector")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _pom_kafka_version() -> str:
    match = re.search(
        r"<kafka.version>([^<]+)</kafka.version>", (ROOT / "deploy/local/pom.xml").read_text()
    )
    assert match, "deploy/local/pom.xml declares no kafka.version"
    return match.group(1)


def test_every_service_is_there(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {
        "kafka", "redis", "topics", "worker", "collector", "prometheus", "grafana",
    }  # fmt: skip


def test_kafka_is_the_official_image_at_the_local_stack_version(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    env = kafka["environment"]

    assert kafka["image"] == f"apache/kafka:{_pom_kafka_version()}"
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert not any("ZOOKEEPER" in name for name in env)
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"


def test_touchpoint_services_run_the_built_image_and_their_role(compose: dict[str, Any]) -> None:
    services = compose["services"]

    assert services["topics"]["build"] == "."
    for name in TOUCHPOINT_SERVICES:
        assert services[name]["image"] == "touchpoint:latest"
    assert services["worker"]["command"] == ["worker"]
    assert services["collector"]["command"] == ["collector"]
    assert services["topics"]["command"] == ["topics", "create"]


@pytest.mark.parametrize("service", TOUCHPOINT_SERVICES)
def test_touchpoint_services_use_only_declared_settings(
    compose: dict[str, Any], service: str
) -> None:
    env = compose["services"][service]["environment"]

    unknown = set(env) - ENV_VARS
    assert not unknown, f"{service} sets variables that streams/settings.py does not declare"
    assert env["TOUCHPOINT_KAFKA_BROKERS"] == "kafka:19092"
    assert env["TOUCHPOINT_REDIS_URL"] == "redis://redis:6379/0"


def test_collector_reads_table_state_from_the_worker(compose: dict[str, Any]) -> None:
    env = compose["services"]["collector"]["environment"]

    assert env["TOUCHPOINT_WORKER_URL"] == "http://worker:6066"
    assert env["TOUCHPOINT_COLLECTOR_HOST"] == "0.0.0.0"  # noqa: S104  # inside the container


def test_monitoring_mounts_point_at_files_in_the_repository(compose: dict[str, Any]) -> None:
    services = compose["services"]
    mounts = services["prometheus"]["volumes"] + services["grafana"]["volumes"]
    sources = [m.split(":")[0] for m in mounts if m.startswith("./")]

    assert sources == [
        "./deploy/prometheus/prometheus.yml",
        "./deploy/prometheus/rules",
        "./deploy/grafana/provisioning",
        "./deploy/grafana/dashboards",
    ]
    for source in sources:
        assert (ROOT / source).exists(), f"{source} is mounted but missing"


def _compose_command() -> list[str] | None:
    if (
        shutil.which("docker")
        and subprocess.run(
            ["docker", "compose", "version"], capture_output=True, check=False
        ).returncode
        == 0
    ):
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_docker_compose_accepts_the_file() -> None:
    command = _compose_command()
    if command is None:
        # Fail, never skip (as the promtool tests): an unchecked compose file is not a pass.
        pytest.fail(
            "no `docker compose` plugin nor docker-compose on this machine: run "
            "`make bootstrap` (`make test` and `make test-unit` run it)"
        )

    result = subprocess.run(
        [*command, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
