"""Scoring rules: load and check the TOML rules file, index rules by event type.

A rule matches an event by type (required), channel(s), journey status and
metric thresholds (``"wait_seconds > 300"``), and emits signals: a dimension, a
value in [-1, 1] and a weight. Every matching rule fires. A bad file fails at
load with :class:`RulesError` naming the file, the rule (index and name) and the
fault, so an operator never runs with half a rule set.
"""

from __future__ import annotations

import operator
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

from streams.codec.types import CHANNELS, JOURNEY_STATUSES, METRIC_KEYS
from streams.engine.config import DIMENSION_INDEX, DIMENSIONS, EngineConfig, parse_engine_config
from streams.errors import RulesError

OPERATORS: Final[dict[str, Callable[[float, float], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
NO_JOURNEY: Final = "none"  # journey_status value matching an event without a journey
_CONDITION = re.compile(r"^\s*([a-z_]+)\s*([<>=!~]+)\s*(-?\d+(?:\.\d+)?)\s*$")
_RULE_KEYS: Final = frozenset(
    {"name", "types", "channels", "journey_status", "not_journey_status", "when", "signals"}
)
_SIGNAL_KEYS: Final = frozenset({"dimension", "value", "weight"})


@dataclass(frozen=True, slots=True)
class Signal:
    """One contribution: ``dim`` indexes DIMENSIONS; ``vw`` is value * weight, precomputed."""

    dim: int
    value: float
    weight: float
    vw: float

    @property
    def dimension(self) -> str:
        return DIMENSIONS[self.dim]


@dataclass(frozen=True, slots=True)
class Condition:
    metric: str
    op: str
    threshold: float
    test: Callable[[float, float], bool]

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.threshold:g}"


@dataclass(frozen=True, slots=True)
class Rule:
    index: int
    name: str
    types: tuple[str, ...]
    channels: frozenset[str] | None
    journey_status: frozenset[str] | None
    not_journey_status: frozenset[str] | None
    when: tuple[Condition, ...]
    signals: tuple[Signal, ...]

    def matches(self, status: str, metrics: dict[str, float]) -> bool:
        """Journey status and metric checks (type and channel are matched by the index)."""
        if self.journey_status is not None and status not in self.journey_status:
            return False
        if self.not_journey_status is not None and status in self.not_journey_status:
            return False
        for cond in self.when:
            got = metrics.get(cond.metric)
            if got is None or not cond.test(got, cond.threshold):
                return False
        return True


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Checked rules plus engine settings; ``index[type][channel]`` lists the candidate rules."""

    source: str
    rules: tuple[Rule, ...]
    config: EngineConfig
    index: dict[str, dict[str, tuple[Rule, ...]]]

    def candidates(self, event_type: str, channel: str) -> tuple[Rule, ...]:
        by_channel = self.index.get(event_type)
        if by_channel is None:
            return ()
        return by_channel.get(channel, ())


DEFAULT_RULES: Final = "default_rules.toml"


def load_rules(path: str | Path | None = None) -> RuleSet:
    """Load and check a rules file; ``None`` loads the packaged default rules."""
    if path is None:
        ref = resources.files("streams.engine").joinpath(DEFAULT_RULES)
        source = str(ref)
        try:
            text = ref.read_text(encoding="utf-8")
        except OSError as exc:  # pragma: no cover - packaging fault
            raise RulesError(f"rules file {source}: cannot read ({exc}): reinstall") from exc
    else:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise RulesError(
                f"rules file {source}: cannot read ({exc.strerror or exc}): check the path"
            ) from exc
        except UnicodeDecodeError as exc:
            raise RulesError(f"rules file {source}: not UTF-8 text ({exc})") from exc
    return parse_rules(text, source)


def parse_rules(text: str, source: str = "<string>") -> RuleSet:
    """Parse rules from TOML text; ``source`` names the file in error messages."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"rules file {source}: {_syntax_where(text, str(exc))}: {exc}") from exc

    def fail_file(msg: str) -> RulesError:
        return RulesError(f"rules file {source}: {msg}")

    extra = sorted(set(doc) - {"engine", "rule"})
    if extra:
        raise fail_file(
            f"unknown top-level key(s) {', '.join(extra)} (expected [engine], [[rule]])"
        )
    engine = doc.get("engine", {})
    if not isinstance(engine, dict):
        raise fail_file("[engine] must be a table")
    config = parse_engine_config(engine, fail_file)
    raw_rules = doc.get("rule", [])
    if not isinstance(raw_rules, list) or not raw_rules:
        raise fail_file("no [[rule]] entries: at least one rule is needed")
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_rules, start=1):
        rule = _parse_rule(i, raw, source)
        if rule.name in seen:
            raise RulesError(f"rules file {source}: rule #{i} ({rule.name}): duplicate name")
        seen.add(rule.name)
        rules.append(rule)
    return RuleSet(source=source, rules=tuple(rules), config=config, index=_build_index(rules))


def _build_index(rules: list[Rule]) -> dict[str, dict[str, tuple[Rule, ...]]]:
    index: dict[str, dict[str, list[Rule]]] = {}
    for rule in rules:
        for event_type in rule.types:
            by_channel = index.setdefault(event_type, {c: [] for c in CHANNELS})
            for channel in CHANNELS:
                if rule.channels is None or channel in rule.channels:
                    by_channel[channel].append(rule)
    return {t: {c: tuple(rs) for c, rs in bc.items() if rs} for t, bc in index.items()}


def _parse_rule(i: int, raw: Any, source: str) -> Rule:
    name = raw.get("name") if isinstance(raw, dict) else None
    label = f"rule #{i} ({name})" if isinstance(name, str) and name else f"rule #{i}"

    def fail(msg: str) -> RulesError:
        return RulesError(f"rules file {source}: {label}: {msg}")

    if not isinstance(raw, dict):
        raise fail("must be a table")
    extra = sorted(set(raw) - _RULE_KEYS)
    if extra:
        raise fail(f"unknown key(s) {', '.join(extra)}; allowed: {', '.join(sorted(_RULE_KEYS))}")
    if not isinstance(name, str) or not name:
        raise fail("name: required non-empty string")
    types = _strings(raw, "types", fail, required=True)
    assert types is not None  # noqa: S101 - required=True guarantees a value
    for t in types:
        if not re.fullmatch(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+", t):
            raise fail(f"types: {t!r} is not a dotted event type like 'delivery.late'")
    channels = _strings(raw, "channels", fail, allowed=CHANNELS)
    statuses = (*JOURNEY_STATUSES, NO_JOURNEY)
    status = _strings(raw, "journey_status", fail, allowed=statuses)
    not_status = _strings(raw, "not_journey_status", fail, allowed=statuses)
    when_raw = raw.get("when", [])
    if not isinstance(when_raw, list) or not all(isinstance(w, str) for w in when_raw):
        raise fail('when: must be a list of strings like "wait_seconds > 300"')
    when = tuple(_parse_condition(w, fail) for w in when_raw)
    sig_raw = raw.get("signals")
    if not isinstance(sig_raw, list) or not sig_raw:
        raise fail("signals: required non-empty list of {dimension, value, weight}")
    signals = tuple(_parse_signal(j, s, fail) for j, s in enumerate(sig_raw, start=1))
    return Rule(
        index=i,
        name=name,
        types=tuple(types),
        channels=frozenset(channels) if channels is not None else None,
        journey_status=frozenset(status) if status is not None else None,
        not_journey_status=frozenset(not_status) if not_status is not None else None,
        when=when,
        signals=signals,
    )


def _strings(
    raw: dict[str, Any],
    key: str,
    fail: Callable[[str], RulesError],
    *,
    required: bool = False,
    allowed: tuple[str, ...] | None = None,
) -> list[str] | None:
    if key not in raw:
        if required:
            raise fail(f"{key}: required non-empty list of strings")
        return None
    got = raw[key]
    if isinstance(got, str):
        got = [got]
    if not isinstance(got, list) or not got or not all(isinstance(x, str) for x in got):
        raise fail(f"{key}: must be a non-empty list of strings, got {got!r}")
    if allowed is not None:
        bad = [x for x in got if x not in allowed]
        if bad:
            raise fail(f"{key}: unknown value(s) {bad}; allowed: {', '.join(allowed)}")
    repeated = sorted({x for x in got if got.count(x) > 1})
    if repeated:  # a repeated type would fire the rule twice, doubling its weight
        raise fail(f"{key}: {', '.join(repeated)} listed more than once")
    return got


def _parse_condition(text: str, fail: Callable[[str], RulesError]) -> Condition:
    m = _CONDITION.match(text)
    if m is None:
        raise fail(f"when: cannot parse {text!r}; write '<metric> <op> <number>'")
    metric, op, number = m.group(1), m.group(2), m.group(3)
    if metric not in METRIC_KEYS:
        raise fail(f"when: unknown metric {metric!r} in {text!r}; known: {', '.join(METRIC_KEYS)}")
    if op not in OPERATORS:
        raise fail(f"when: bad operator {op!r} in {text!r}; use one of {' '.join(OPERATORS)}")
    return Condition(metric=metric, op=op, threshold=float(number), test=OPERATORS[op])


def _parse_signal(j: int, raw: Any, fail: Callable[[str], RulesError]) -> Signal:
    if not isinstance(raw, dict):
        raise fail(f"signal {j}: must be a table {{dimension, value, weight}}")
    extra = sorted(set(raw) - _SIGNAL_KEYS)
    if extra:
        raise fail(f"signal {j}: unknown key(s) {', '.join(extra)}")
    dim = raw.get("dimension")
    if dim not in DIMENSION_INDEX:
        raise fail(f"signal {j}: unknown dimension {dim!r}; use one of {', '.join(DIMENSIONS)}")
    value = raw.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float) or not -1 <= value <= 1:
        raise fail(f"signal {j}: value must be a number in [-1, 1], got {value!r}")
    weight = raw.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight <= 100:
        raise fail(f"signal {j}: weight must be a number in (0, 100], got {weight!r}")
    return Signal(
        dim=DIMENSION_INDEX[dim],
        value=float(value),
        weight=float(weight),
        vw=round(value * weight, 9),
    )


def _syntax_where(text: str, message: str) -> str:
    """Name the rule around a TOML syntax error from the line number in tomllib's message."""
    m = re.search(r"line (\d+)", message)
    if m is not None:
        line_no = int(m.group(1))
    elif "end of document" in message:
        line_no = len(text.splitlines())
    else:
        return "syntax error"
    rule_no = 0
    name: str | None = None
    for line in text.splitlines()[:line_no]:
        stripped = line.strip()
        if stripped.startswith("[[rule]]"):
            rule_no += 1
            name = None
        elif rule_no and stripped.startswith("name") and "=" in stripped:
            name = stripped.split("=", 1)[1].strip().strip("\"'")
    if rule_no == 0:
        return f"syntax error at line {line_no} (before the first rule)"
    label = f"rule #{rule_no} ({name})" if name else f"rule #{rule_no}"
    return f"{label}: syntax error at line {line_no}"
