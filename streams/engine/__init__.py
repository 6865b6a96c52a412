"""The experience scoring engine (pure: no I/O, no clock). See docs/scoring.md."""

from streams.engine.alerts import Alert, Reason
from streams.engine.config import DIMENSIONS, SEVERITIES, TRIGGERS, EngineConfig
from streams.engine.deadlines import DeadlineIndex
from streams.engine.decision import Decision
from streams.engine.engine import Engine, OutcomeLike
from streams.engine.rules import Rule, RuleSet, Signal, load_rules, parse_rules
from streams.engine.state import STATE_VERSION, CustomerState

__all__ = [
    "DIMENSIONS",
    "SEVERITIES",
    "STATE_VERSION",
    "TRIGGERS",
    "Alert",
    "CustomerState",
    "DeadlineIndex",
    "Decision",
    "Engine",
    "EngineConfig",
    "OutcomeLike",
    "Reason",
    "Rule",
    "RuleSet",
    "Signal",
    "load_rules",
    "parse_rules",
]
