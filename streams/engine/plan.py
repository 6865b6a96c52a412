"""Rules compiled for the hot path: per (event type, channel) one :class:`Plan`.

The rules of a (type, channel) pair that have no conditions always fire together, so
their signals are summed per dimension once, at load. Rules with conditions (journey
status, metric thresholds) get a compiled check (a closure, no per-event parsing or
attribute walks) and their own pre-summed deltas. A delta is ``(i, vw, w)``: add
``vw`` and ``w`` to the sums at ``i = 4 * dimension`` (short) and ``i + 2`` (long).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Final

from streams.codec.types import CHANNELS
from streams.engine.rules import Condition, Rule, RuleSet
from streams.engine.state import rule_key
from streams.errors import RulesError

Check = Callable[[str, dict[str, float]], bool]
CONTACT, COMPLAINT, RESOLVED = 1, 2, 4  # Plan.flags: what the event type means to triggers
Delta = tuple[int, float, float]
_NAN: Final = math.nan


class Plan:
    """What the rules of one (type, channel) pair do to an event.

    ``deltas``/``negative``/``negative_rules``/``matched`` cover the unconditional
    rules; ``conditional`` holds ``(check, deltas, negative, rule key or None)`` per
    rule with conditions. ``negative`` is the sum of ``-v*w`` over negative signals.
    ``flags`` say whether the type is a contact, a complaint or a complaint resolution.
    """

    __slots__ = ("deltas", "negative", "negative_rules", "matched", "conditional", "flags")

    def __init__(self, rules: Iterable[Rule], flags: int = 0) -> None:
        self.flags = flags
        plain = []
        conditional = []
        for rule in rules:
            check = compile_check(rule)
            if check is None:
                plain.append(rule)
            else:
                negative = _negative(rule)
                key = rule_key(rule.name) if negative else None
                conditional.append((check, summed_deltas([rule]), negative, key))
        self.deltas = summed_deltas(plain)
        self.negative = sum(_negative(r) for r in plain)
        self.negative_rules = tuple(rule_key(r.name) for r in plain if _negative(r))
        self.matched = len(plain)
        self.conditional: tuple[tuple[Check, tuple[Delta, ...], float, int | None], ...] = tuple(
            conditional
        )


def compile_plans(rules: RuleSet, type_flags: dict[str, int]) -> dict[str, dict[str, Plan]]:
    """``plans[type][channel]`` for every indexed pair, and for every channel of a type
    with flags (a complaint type without rules still raises complaint alerts)."""
    plans: dict[str, dict[str, Plan]] = {}
    for etype in set(rules.index) | set(type_flags):
        by_channel = rules.index.get(etype, {})
        flags = type_flags.get(etype, 0)
        plans[etype] = {
            channel: Plan(by_channel.get(channel, ()), flags)
            for channel in CHANNELS
            if channel in by_channel or flags
        }
    return plans


def rules_by_key(rules: RuleSet) -> dict[int, Rule]:
    """Rule keys (stored in reasons) to rules; a key collision is a RulesError."""
    out: dict[int, Rule] = {}
    for rule in rules.rules:
        key = rule_key(rule.name)
        other = out.get(key)
        if other is not None:
            raise RulesError(
                f"rules file {rules.source}: rule #{rule.index} ({rule.name}): its name "
                f"hashes like rule #{other.index} ({other.name}): rename one of them"
            )
        out[key] = rule
    return out


def summed_deltas(rules: Iterable[Rule]) -> tuple[Delta, ...]:
    vw = [0.0] * 4
    w = [0.0] * 4
    used = [False] * 4
    for rule in rules:
        for sig in rule.signals:
            vw[sig.dim] += sig.vw
            w[sig.dim] += sig.weight
            used[sig.dim] = True
    return tuple((4 * d, vw[d], w[d]) for d in range(4) if used[d])


def _negative(rule: Rule) -> float:
    return -sum(sig.vw for sig in rule.signals if sig.vw < 0)


def compile_check(rule: Rule) -> Check | None:
    """A closure testing journey status and metric conditions; None if there are none."""
    parts: list[Check] = []
    if rule.journey_status is not None:
        allowed = rule.journey_status
        parts.append(lambda status, m: status in allowed)
    if rule.not_journey_status is not None:
        refused = rule.not_journey_status
        parts.append(lambda status, m: status not in refused)
    parts.extend(_metric_check(cond) for cond in rule.when)
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        first, second = parts
        return lambda status, m: first(status, m) and second(status, m)
    every = tuple(parts)
    return lambda status, m: all(p(status, m) for p in every)


def _metric_check(cond: Condition) -> Check:
    """A missing metric fails: NaN compares false with < <= > >= ==; != is spelled out."""
    key, x = cond.metric, cond.threshold
    op = cond.op
    if op == ">":
        return lambda status, m: m.get(key, _NAN) > x
    if op == ">=":
        return lambda status, m: m.get(key, _NAN) >= x
    if op == "<":
        return lambda status, m: m.get(key, _NAN) < x
    if op == "<=":
        return lambda status, m: m.get(key, _NAN) <= x
    if op == "==":
        return lambda status, m: m.get(key, _NAN) == x
    return lambda status, m: (got := m.get(key)) is not None and got != x
