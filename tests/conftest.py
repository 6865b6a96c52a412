"""Shared by every test: the repository root (kept small on purpose)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The checkout's root folder (where pyproject.toml lives)."""
    return REPO_ROOT


def pytest_configure(config: pytest.Config) -> None:
    # kafka-python 3.0 loads its protocol schemas through deprecated importlib.resources
    # calls; hundreds of identical warnings would bury the ones that matter.
    config.addinivalue_line("filterwarnings", "ignore:read_text is deprecated:DeprecationWarning")
    config.addinivalue_line("filterwarnings", "ignore:open_text is deprecated:DeprecationWarning")
