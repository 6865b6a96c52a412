"""One medium run shared by the simulator tests (generated once per session)."""

from __future__ import annotations

from typing import Any

import pytest

from streams.sim import Label, SimConfig, Simulation

MEDIUM = SimConfig(customers=400, days=14, seed=11, degraded_share=0.15)


@pytest.fixture(scope="session")
def medium_config() -> SimConfig:
    return MEDIUM


@pytest.fixture(scope="session")
def medium_sim() -> Simulation:
    return Simulation(MEDIUM)


@pytest.fixture(scope="session")
def medium_events(medium_sim: Simulation) -> list[dict[str, Any]]:
    return list(medium_sim.events())


@pytest.fixture(scope="session")
def medium_labels(medium_sim: Simulation) -> list[Label]:
    return medium_sim.labels()
