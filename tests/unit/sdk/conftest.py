"""Fixtures for the SDK unit tests (the doubles themselves live in sdk_doubles.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sdk_doubles import MaxRandom, Recorder, ScriptedCollector, Sleeps


@pytest.fixture
def collector() -> Iterator[ScriptedCollector]:
    server = ScriptedCollector()
    yield server
    server.close()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def max_random() -> MaxRandom:
    return MaxRandom()
