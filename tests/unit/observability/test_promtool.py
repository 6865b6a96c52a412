"""The Prometheus config and rules pass promtool, and the rule tests really test the alerts.

promtool comes from Debian's ``prometheus`` package. When it is missing these
tests fail (never skip): CI installs it, and a rule file nobody checked is a
rule file that pages nobody.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.prometheus

ROOT = Path(__file__).resolve().parents[3]
PROM = ROOT / "deploy" / "prometheus"
RULES = PROM / "rules" / "touchpoint.rules.yml"
TEST_FILES = sorted((PROM / "tests").glob("*.test.yml"))


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool not found on PATH: install Debian's prometheus package "
            "(`apt-get update && apt-get install -y prometheus`) to check the alert rules"
        )
    return path


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=300, check=False
    )


def _alerts() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"] if "alert" in r}


def _rule_tests() -> list[tuple[Path, dict[str, Any], dict[str, Any]]]:
    """(file, document, test) for every test in every rule test file."""
    out = []
    for path in TEST_FILES:
        doc = yaml.safe_load(path.read_text())
        out += [(path, doc, test) for test in doc["tests"]]
    return out


def test_rules_pass_promtool_check(promtool: str) -> None:
    result = _run(promtool, "check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-kubernetes.yml"])
def test_prometheus_config_passes_promtool_check(promtool: str, config: str) -> None:
    result = _run(promtool, "check", "config", PROM / config)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass(promtool: str) -> None:
    assert TEST_FILES, "no rule test files in deploy/prometheus/tests"
    result = _run(promtool, "test", "rules", *TEST_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_not_firing_case() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for _path, _doc, test in _rule_tests():
        for case in test.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    alerts = set(_alerts())
    assert alerts - firing == set(), "alerts without a firing case"
    assert alerts - quiet == set(), "alerts without a not-firing case"
    assert (firing | quiet) - alerts == set(), "tests name alerts that do not exist"


@pytest.mark.parametrize("alertname", sorted(_alerts()))
def test_rule_tests_fail_when_the_alert_never_fires(
    promtool: str, alertname: str, tmp_path: Path
) -> None:
    """Mutation check: replace one alert's expression with one that never fires.

    The alert's own tests must then fail, which proves the firing case really
    depends on the rule (and that promtool's exit code is what we assert on).
    """
    doc = yaml.safe_load(RULES.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alertname:
                rule["expr"] = "vector(1) == 0"
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "rules" / RULES.name).write_text(yaml.safe_dump(doc))
    mutant_tests: list[Path] = []
    for path, file_doc, test in _rule_tests():
        if any(c["alertname"] == alertname for c in test.get("alert_rule_test", [])):
            out = tmp_path / "tests" / f"{len(mutant_tests)}-{path.name}"
            out.write_text(yaml.safe_dump({**file_doc, "tests": [test]}))
            mutant_tests.append(out)
    result = _run(promtool, "test", "rules", *mutant_tests)
    assert result.returncode != 0, f"{alertname}: tests still pass with a dead rule"
    assert alertname in result.stdout + result.stderr


def test_every_dashboard_query_is_valid_promql(promtool: str, tmp_path: Path) -> None:
    """Each panel query parses: promtool checks them as recording rules.

    Grafana's interval variables are replaced by durations first.
    """
    import json

    dashboard = json.loads(
        (ROOT / "deploy" / "grafana" / "dashboards" / "touchpoint.json").read_text()
    )
    rules = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, duration in (
                ("$__rate_interval", "1m"), ("$__interval", "15s"), ("$__range", "6h"),
            ):  # fmt: skip
                expr = expr.replace(variable, duration)
            assert "$" not in expr, f"{panel['title']}: unknown variable in {expr!r}"
            rules.append(
                {"record": f"dashboard:panel_{panel['id']}_{target['refId']}", "expr": expr}
            )
    assert rules
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = _run(promtool, "check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr
