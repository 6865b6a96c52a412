"""Shared by every test: the repository root, and a quiet kafka-python import (kept small)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

# kafka-python 3.0 loads ~100 protocol schemas through deprecated importlib.resources calls
# at import time; import it once here, quietly, so those warnings do not bury real ones.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import kafka.admin  # noqa: F401

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The checkout's root folder (where pyproject.toml lives)."""
    return REPO_ROOT
