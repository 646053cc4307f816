"""A real ``mcpi-hub dashboard`` process on 127.0.0.1, as a user starts it."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mcpi.testing.servers import free_port, stop_group, wait_for

REPOSITORY = Path(__file__).resolve().parents[2]


@dataclass
class Dashboard:
    process: subprocess.Popen[str]
    port: int
    token: str
    cache: Path
    printed: list[str]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def hub_env(cache: Path) -> dict[str, str]:
    """A hub's environment with its own job book (and no config file of this machine's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCPI_")}
    return env | {
        "MCPI_CACHE_DIR": str(cache),
        "XDG_CONFIG_HOME": str(cache / "no-config"),
        "PYTHONPATH": str(REPOSITORY),
    }


@contextlib.contextmanager
def running_dashboard(cache: Path, cluster: dict[str, str] | None = None) -> Iterator[Dashboard]:
    """``mcpi-hub dashboard`` on a free port of 127.0.0.1 (of the ``cluster`` its
    environment names, if any), stopped afterwards."""
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mcpi", "dashboard", "--port", str(port)],
        env=hub_env(cache) | (cluster or {}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        printed = [process.stdout.readline().strip() for _ in range(3)]
        found = re.search(r"\?token=(\S+)", printed[0])
        assert found, printed
        board = Dashboard(process, port, found.group(1), cache, printed)
        wait_for(lambda: _answers(board), timeout=20, what="the dashboard")
        yield board
    finally:
        stop_group(process, timeout=10)  # type: ignore[arg-type]


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[Dashboard]:
    with running_dashboard(tmp_path / "cache") as board:
        yield board


def _answers(board: Dashboard) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(board.base + "/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False
