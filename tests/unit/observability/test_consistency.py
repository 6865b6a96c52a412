"""Dashboard, alert rules and docs name only metrics the code really exports.

A PromQL expression that names a metric nobody exports evaluates to nothing:
the panel stays empty and the alert never fires, silently. So every metric
name in every expression (rules and dashboard) must be a sample name the
metric factories export, ``up``, or a recording rule defined in the rules.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from streams.sinks.metrics import create_collector_metrics, create_worker_metrics

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "deploy" / "prometheus" / "rules" / "touchpoint.rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "touchpoint.json"
OPERATIONS = ROOT / "docs" / "operations.md"

AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile",
}  # fmt: skip
FUNCTIONS = {
    "abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min",
    "day_of_month", "day_of_week", "day_of_year", "days_in_month", "delta", "deriv", "exp",
    "floor", "histogram_quantile", "holt_winters", "hour", "idelta", "increase", "irate",
    "label_join", "label_replace", "ln", "log10", "log2", "minute", "month", "predict_linear",
    "rate", "resets", "round", "scalar", "sgn", "sort", "sort_desc", "sqrt", "time",
    "timestamp", "vector", "year", "avg_over_time", "min_over_time", "max_over_time",
    "sum_over_time", "count_over_time", "quantile_over_time", "stddev_over_time",
    "stdvar_over_time", "last_over_time", "present_over_time",
}  # fmt: skip
KEYWORDS = {
    "and", "or", "unless", "atan2", "offset", "bool", "inf", "nan", "by", "without", "on",
    "ignoring", "group_left", "group_right",
}  # fmt: skip

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_IDENT = re.compile(r"(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads.

    Strings, label matchers ``{...}``, ranges ``[...]``, grouping clauses
    (``by (...)``, ``on (...)``...) and Grafana variables are removed first;
    then every identifier is a function (followed by ``(``, must be a known
    PromQL function or aggregation, so a typo fails loudly), a keyword, or a
    metric name. Durations and numbers are not identifiers (``1d`` starts with
    a digit).
    """
    text = _STRING.sub(" ", expr)
    text = _VARIABLE.sub(" ", text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names: set[str] = set()
    for match in _IDENT.finditer(text):
        word, call = match.group(1), match.group(2)
        if call:
            if word.lower() not in FUNCTIONS | AGGREGATIONS:
                raise ValueError(f"unknown PromQL function {word!r} in {expr!r}")
            continue
        if word.lower() in KEYWORDS or word.lower() in AGGREGATIONS:
            continue
        names.add(word)
    return names


def exported_registry() -> CollectorRegistry:
    """A registry with every metric the worker and the collector serve."""
    registry = CollectorRegistry()
    create_worker_metrics(registry)
    create_collector_metrics(registry)
    return registry


def exported_sample_names() -> set[str]:
    """Every sample name the worker and collector expose once each metric has a series."""
    registry = CollectorRegistry()
    for metrics in (create_worker_metrics(registry), create_collector_metrics(registry)):
        for value in vars(metrics).values():
            labelnames = getattr(value, "_labelnames", None)
            if labelnames:  # a labelled metric exports nothing until it has a child
                value.labels(*["x"] * len(labelnames))
    return {s.name for family in registry.collect() for s in family.samples}


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _dashboard_exprs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            else:
                yield from _dashboard_exprs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _dashboard_exprs(item)


def _known_names() -> set[str]:
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    return exported_sample_names() | recorded | {"up"}


def _all_exprs() -> list[tuple[str, str]]:
    out = [(rule.get("alert") or rule["record"], rule["expr"]) for rule in _rules()]
    dashboard = json.loads(DASHBOARD.read_text())
    out += [("dashboard", expr) for expr in _dashboard_exprs(dashboard)]
    return out


# --- the tokenizer itself --------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("sum(rate(cx_bogus_total[5m]))", {"cx_bogus_total"}),
        (
            "histogram_quantile(0.9, sum by (le, channel) "
            '(rate(cx_experience_score_bucket{channel="web", le!="+Inf"}[$__rate_interval])))',
            {"cx_experience_score_bucket"},
        ),
        (
            "cx:experience_score:mean1h < on (channel) (sum by (channel) "
            "(rate(cx_a_sum[1h] offset 1d)) / sum without (instance) (rate(cx_a_count[1h]))) - 10"
            " and on (channel) cx_b > 1e3",
            {"cx:experience_score:mean1h", "cx_a_sum", "cx_a_count", "cx_b"},
        ),
        ('absent(up{job="touchpoint-worker"})', {"up"}),
        ("max by (topic, partition) (cx_lag) > bool 5", {"cx_lag"}),
        ('label_replace(cx_x, "dst", "$1", "src", "(.*)")', {"cx_x"}),
        (
            "sum(increase(cx_y_total[$__range])) / ignoring (le) group_left cx_z",
            {"cx_y_total", "cx_z"},
        ),
    ],
)
def test_metric_names_extracts_every_metric_and_nothing_else(expr: str, expected: set[str]) -> None:
    assert metric_names(expr) == expected


def test_metric_names_rejects_unknown_functions() -> None:
    with pytest.raises(ValueError, match="ratee"):
        metric_names("sum(ratee(cx_events_received_total[5m]))")


def test_a_bogus_metric_is_caught() -> None:
    known = _known_names()
    bogus = metric_names(
        "sum(rate(cx_events_recieved_total[5m])) / sum(rate(cx_events_received_total[5m]))"
    )
    assert bogus - known == {"cx_events_recieved_total"}


def test_exported_names_include_the_variants() -> None:
    names = exported_sample_names()
    assert {"cx_events_received_total", "cx_events_received_created"} <= names
    assert {"cx_experience_score_bucket", "cx_experience_score_sum"} <= names
    assert {"cx_experience_score_count", "cx_consumer_lag_records"} <= names
    assert {"cx_collector_requests_total", "cx_collector_rate_limited_total"} <= names
    assert "cx_events_received" not in names  # the family name is not a series


# --- the artefacts ------------------------------------------------------------------


@pytest.mark.parametrize(("where", "expr"), _all_exprs())
def test_expression_names_only_exported_metrics(where: str, expr: str) -> None:
    names = metric_names(expr)
    assert names, f"{where}: no metric in {expr!r}"
    assert names - _known_names() == set(), f"{where}: {expr!r}"


def test_dashboard_covers_every_area() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    used = set().union(*(metric_names(e) for e in _dashboard_exprs(dashboard)))
    for needed in (
        "cx_events_received_total", "cx_events_processed_total", "cx_events_rejected_total",
        "cx_alerts_raised_total", "cx_experience_score_bucket", "cx_event_time_lag_seconds_bucket",
        "cx_kafka_to_decision_seconds_bucket", "cx_consumer_lag_records",
        "cx_redis_writebehind_queue", "cx_collector_requests_total",
        "cx_collector_request_duration_seconds_bucket", "cx_time_to_outreach_seconds_bucket",
    ):  # fmt: skip
        assert needed in used, needed
    assert all(
        p.get("datasource", {}).get("uid", "prometheus") == "prometheus"
        for p in dashboard["panels"]
    )
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_every_alert_has_labels_annotations_and_a_runbook_anchor() -> None:
    docs = OPERATIONS.read_text()
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', docs))
    alerts = [rule for rule in _rules() if "alert" in rule]
    assert alerts
    for rule in alerts:
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        annotations = rule["annotations"]
        assert {"summary", "description", "runbook_url"} <= set(annotations), name
        path, _, anchor = annotations["runbook_url"].partition("#")
        assert path == "docs/operations.md", name
        assert anchor in anchors, f"{name}: docs/operations.md has no anchor {anchor!r}"
        assert f"`{name}`" in docs, f"{name} is not named in the runbook"


def _documented_names() -> set[str]:
    """Metric names an operator can type: counters with _total, histograms' series."""
    names = set()
    for family in exported_registry().collect():
        names.add(family.name + ("_total" if family.type == "counter" else ""))
        if family.type == "histogram":
            names |= {f"{family.name}_{suffix}" for suffix in ("bucket", "sum", "count")}
    return names


def test_operations_doc_lists_every_metric() -> None:
    docs = OPERATIONS.read_text()
    for family in exported_registry().collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        assert f"`{name}`" in docs, f"{name} is missing from docs/operations.md"


@pytest.mark.parametrize("doc", ["docs/operations.md", "README.md"])
def test_docs_name_only_metrics_that_exist(doc: str) -> None:
    """A metric name in the docs that nothing exports sends an operator to an empty query."""
    text = (ROOT / doc).read_text()
    used = set(re.findall(r"\bcx_[a-z0-9_]*[a-z0-9]\b", text))
    # Recording rules are level:metric:operation; a Redis key (cx:score:cust-42) is not.
    recorded = set(re.findall(r"\bcx:[a-z0-9_]+:[a-z0-9_]+\b(?![-:])", text))
    assert used - _documented_names() == set(), doc
    assert recorded - {rule["record"] for rule in _rules() if "record" in rule} == set(), doc


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-kubernetes.yml"])
def test_every_job_the_rules_and_dashboard_select_is_scraped(config: str) -> None:
    """A `job="..."` no scrape config defines makes `up == 0` alerts dead and `absent` fire."""
    path = ROOT / "deploy" / "prometheus" / config
    scraped = {job["job_name"] for job in yaml.safe_load(path.read_text())["scrape_configs"]}
    doc = yaml.safe_load(path.read_text())
    assert doc["rule_files"] == ["rules/*.rules.yml"], config
    selected = {
        job for _where, expr in _all_exprs() for job in re.findall(r'job\s*=~?\s*"([^"]+)"', expr)
    }
    assert selected == {"touchpoint-worker", "touchpoint-collector"}
    assert selected <= scraped, f"{config} does not scrape {sorted(selected - scraped)}"


# --- label names --------------------------------------------------------------------

TARGET_LABELS = {"job", "instance"}
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_MATCHER_LABELS = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)")


def _labels_by_sample() -> dict[str, set[str]]:
    """Label names of every exported sample name (``le`` only on ``_bucket``)."""
    registry = CollectorRegistry()
    for metrics in (create_worker_metrics(registry), create_collector_metrics(registry)):
        for value in vars(metrics).values():
            labelnames = getattr(value, "_labelnames", None)
            if labelnames:
                value.labels(*["x"] * len(labelnames))
    out: dict[str, set[str]] = {}
    for family in registry.collect():
        for sample in family.samples:
            out.setdefault(sample.name, set()).update(sample.labels)
    for rule in _rules():
        if "record" in rule:  # a recording rule keeps the labels of its outer `by`
            grouping = _LABEL_LISTS.search(rule["expr"])
            kept = grouping.group(1) if grouping else ""
            out[rule["record"]] = {label.strip() for label in kept.split(",") if label.strip()}
    return out


def expression_labels(expr: str) -> set[str]:
    """Label names an expression groups, joins or matches on (strings removed first)."""
    text = _STRING.sub('""', expr)
    text = _VARIABLE.sub(" ", text)
    names = set()
    for group in _LABEL_LISTS.findall(text):
        names |= {label.strip() for label in group.split(",") if label.strip()}
    for matchers in _MATCHERS.findall(text):
        names |= set(_MATCHER_LABELS.findall(matchers))
    return names


def _dashboard_targets() -> list[tuple[str, str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"], target.get("legendFormat", ""))
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def test_expression_labels_finds_groupings_and_matchers() -> None:
    expr = (
        'sum by (le, channel) (rate(x_bucket{route="/a", status=~"5.."}[5m]))'
        ' / on (channel) group_left y{job!="a,b"}'
    )
    assert expression_labels(expr) == {"le", "channel", "route", "status", "job"}


@pytest.mark.parametrize(("where", "expr"), _all_exprs())
def test_expressions_use_only_labels_their_metrics_have(where: str, expr: str) -> None:
    """`sum by (chanel)` or `{reason="x"}` on a metric without it gives one empty series.

    Every label an expression groups by, joins on or matches must be a label of
    one of the metrics it reads (or a target label: job, instance).
    """
    labels_of = _labels_by_sample()
    available = set(TARGET_LABELS)
    for name in metric_names(expr):
        available |= labels_of.get(name, set())
    assert expression_labels(expr) - available == set(), f"{where}: {expr!r}"


@pytest.mark.parametrize(("title", "expr", "legend"), _dashboard_targets())
def test_dashboard_legends_name_labels_the_query_keeps(title: str, expr: str, legend: str) -> None:
    """A legend `{{label}}` the query aggregated away shows the same empty name on every line."""
    used = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))
    grouping = re.match(r"\s*\w+\s+by\s*\(([^()]*)\)", expr)
    if grouping:  # an outer `sum by (...)` keeps exactly those labels
        kept = {label.strip() for label in grouping.group(1).split(",")}
    else:
        labels_of = _labels_by_sample()
        kept = set(TARGET_LABELS).union(*(labels_of.get(n, set()) for n in metric_names(expr)))
    assert used <= kept, f"{title}: legend {legend!r} for {expr!r}"
