"""The hub's tests: each job's records in a private cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcpi.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(cache_dir=tmp_path)
