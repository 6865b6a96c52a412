"""The rules file: the packaged defaults, coverage of the catalogue, and load errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.codec.catalogue import CATALOGUE
from streams.engine import load_rules, parse_rules
from streams.errors import RulesError

GOOD_RULE = """
[[rule]]
name = "ok"
types = ["page.error"]
signals = [{ dimension = "functional", value = -0.5, weight = 1.0 }]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    return path


def test_default_rules_load_and_index_by_type() -> None:
    rules = load_rules()
    assert rules.source.endswith("default_rules.toml")
    assert [r.name for r in rules.candidates("delivery.late", "web")] == [
        "delivery-late",
        "delivery-late-day",
        "delivery-late-days",
    ]
    assert rules.candidates("no.such_type", "web") == ()
    assert rules.candidates("app.crashed", "web") == ()  # channel-restricted rule


@pytest.mark.parametrize(("etype", "channel"), [(e.type, c) for e in CATALOGUE for c in e.channels])
def test_default_rules_cover_every_catalogue_type_on_its_channels(etype: str, channel: str) -> None:
    rules = load_rules()
    candidates = rules.candidates(etype, channel)
    # with no journey and no metrics at least one rule must still fire
    assert any(r.matches("none", {}) for r in candidates), (etype, channel)


def test_a_rules_file_replaces_the_defaults(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, GOOD_RULE))
    assert [r.name for r in rules.rules] == ["ok"]
    assert rules.config.cap_event_ids == 32  # [engine] defaults apply


def test_engine_section_is_read(tmp_path: Path) -> None:
    text = "[engine]\nshort_half_life_hours = 24\n[engine.sla_hours]\ndelivery = 48\n" + GOOD_RULE
    cfg = load_rules(write(tmp_path, text)).config
    assert cfg.short_half_life == 24 * 3600
    assert cfg.sla["delivery"] == 48 * 3600


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="nope.toml: cannot read"):
        load_rules(tmp_path / "nope.toml")


def test_bad_toml_syntax_names_file_and_rule(tmp_path: Path) -> None:
    text = GOOD_RULE + '\n[[rule]]\nname = "broken"\ntypes = ["page.error"\n'
    path = write(tmp_path, text)
    with pytest.raises(RulesError) as err:
        load_rules(path)
    msg = str(err.value)
    assert str(path) in msg
    assert "rule #2 (broken): syntax error at line" in msg


@pytest.mark.parametrize(
    ("signal", "when", "fault"),
    [
        ('{ dimension = "mood", value = -0.5 }', "[]", "unknown dimension 'mood'"),
        ('{ dimension = "brand", value = -1.5 }', "[]", "value must be a number in [-1, 1]"),
        ('{ dimension = "brand", value = 2 }', "[]", "value must be a number in [-1, 1]"),
        ('{ dimension = "brand", value = 0.5, weight = 0 }', "[]", "weight must be"),
        ('{ dimension = "brand", value = 0.5 }', '["queue_len > 3"]', "unknown metric 'queue_len'"),
        ('{ dimension = "brand", value = 0.5 }', '["nps => 6"]', "bad operator '=>'"),
        ('{ dimension = "brand", value = 0.5 }', '["nps six"]', "cannot parse 'nps six'"),
    ],
)
def test_bad_rule_names_file_rule_and_fault(
    tmp_path: Path, signal: str, when: str, fault: str
) -> None:
    text = GOOD_RULE + (
        f'\n[[rule]]\nname = "faulty"\ntypes = ["page.error"]\nwhen = {when}\nsignals = [{signal}]\n'
    )
    path = write(tmp_path, text)
    with pytest.raises(RulesError) as err:
        load_rules(path)
    msg = str(err.value)
    assert msg.startswith(f"rules file {path}: rule #2 (faulty): ")
    assert fault in msg


@pytest.mark.parametrize(
    ("body", "fault"),
    [
        ('name = "x"\ntypes = ["page.error"]\nsignal = []', "unknown key(s) signal"),
        ('name = "x"\nsignals = [{ dimension = "brand", value = 0.1 }]', "types: required"),
        ('name = "x"\ntypes = ["Page"]\nsignals = [{dimension="brand", value=0.1}]', "dotted"),
        (
            'name = "x"\ntypes = ["a.b"]\nchannels = ["fax"]\nsignals = [{dimension="brand", value=0.1}]',
            "channels: unknown value(s) ['fax']",
        ),
        ('types = ["a.b"]\nsignals = [{dimension="brand", value=0.1}]', "name: required"),
        (
            'name = "x"\ntypes = ["a.b", "a.b"]\nsignals = [{dimension="brand", value=0.1}]',
            "types: a.b listed more than once",
        ),
    ],
)
def test_rule_structure_errors(tmp_path: Path, body: str, fault: str) -> None:
    path = write(tmp_path, GOOD_RULE + "\n[[rule]]\n" + body + "\n")
    with pytest.raises(RulesError) as err:
        load_rules(path)
    assert str(path) in str(err.value)
    assert "rule #2" in str(err.value)
    assert fault in str(err.value)


def test_duplicate_rule_names_are_refused() -> None:
    with pytest.raises(RulesError, match=r"rule #2 \(ok\): duplicate name"):
        parse_rules(GOOD_RULE + GOOD_RULE, "dup.toml")


@pytest.mark.parametrize(
    ("engine", "fault"),
    [
        ("[engine]\nshrinkage = -1", "[engine] shrinkage: must be > 0"),
        ("[engine]\nshort_half_life_hours = inf", "short_half_life_hours: must be a finite number"),
        ("[engine.sla_hours]\ndelivery = inf", "delivery: must be a finite number"),
        ("[engine.sla_hours]\ndelivery = 1e12", "delivery: must be > 0 and <= 87600"),
        (
            "[engine]\nlong_half_life_days = 0.001",
            "long_half_life_days (0.001 days) must be at least",
        ),
        ("[engine]\nhalf_life = 3", "[engine] unknown key(s) half_life"),
        ("[engine.alerts]\nenter_gap = 5\nexit_gap = 9", "exit_gap (9.0) must be <= enter_gap"),
        ("[engine.caps]\nevent_ids = 0", "[engine.caps] event_ids: must be an integer >= 1"),
        ('[engine.tiers]\ndefault = "gold"', "tier 'gold' has no prior"),
        ('[engine.alerts.base_severity]\ncomplaint = "urgent"', "unknown severity 'urgent'"),
    ],
)
def test_engine_section_errors_name_file_and_key(engine: str, fault: str) -> None:
    with pytest.raises(RulesError) as err:
        parse_rules(engine + "\n" + GOOD_RULE, "custom.toml")
    assert str(err.value).startswith("rules file custom.toml: ")
    assert fault in str(err.value)


def test_a_file_without_rules_is_refused() -> None:
    with pytest.raises(RulesError, match="no \\[\\[rule\\]\\] entries"):
        parse_rules("[engine]\n", "empty.toml")


def test_conditions_and_statuses_match() -> None:
    rules = parse_rules(
        """
[[rule]]
name = "slow"
types = ["store.queue"]
journey_status = ["none", "started"]
when = ["wait_seconds > 300", "wait_seconds <= 900"]
signals = [{ dimension = "interaction", value = -0.4 }]
"""
    )
    (rule,) = rules.rules
    assert rule.matches("none", {"wait_seconds": 301})
    assert not rule.matches("none", {"wait_seconds": 300})
    assert not rule.matches("none", {"wait_seconds": 901})
    assert not rule.matches("none", {})
    assert not rule.matches("completed", {"wait_seconds": 500})
    assert rule.signals[0].weight == 1.0
