"""benchmarks/sensitivity.py runs SALib, scipy and mcpi on the same design and prints them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "sensitivity.py"


def test_the_sensitivity_benchmark_runs_every_tool(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--processes", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {line.split("  ")[0]: line for line in done.stdout.splitlines()[1:]}
    assert set(rows) == {
        "SALib analyze.sobol (bootstrap)",
        "scipy sobol_indices (bootstrap)",
        "mcpi, local pool of 2",
    }, done.stdout
    for line in rows.values():  # the same design points and evaluations for every tool
        assert " 4,096 " in line and " 20,480 " in line, done.stdout
    # mcpi's seeded runs are bit for bit the same on every machine: each interval covers.
    assert rows["mcpi, local pool of 2"].endswith("2/2"), done.stdout
