"""What the CLI's tests share: a user's environment with no cluster and a private cache."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "no-config"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
