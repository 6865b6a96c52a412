"""Times on the command line (``--since``/``--until``): RFC 3339 or an age before now."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streams.cli.when import parse_when
from streams.errors import ConfigError

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC).timestamp()


def test_parse_when_reads_ages_and_rfc3339_and_names_bad_input() -> None:
    assert parse_when("90s", NOW, "--since") == NOW - 90
    assert parse_when("2h", NOW, "--since") == NOW - 7200
    assert parse_when("1.5d", NOW, "--since") == NOW - 1.5 * 86400
    assert parse_when("2026-11-26T09:00:00Z", NOW, "--since") == NOW - 3600
    assert parse_when(None, NOW, "--since") is None
    with pytest.raises(ConfigError, match="--until 'yesterday' is neither"):
        parse_when("yesterday", NOW, "--until")
