"""benchmarks/models.py runs every backend on the same model and prints the ratios."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "models.py"


def test_the_model_benchmark_runs_every_backend(tmp_path: Path) -> None:
    # Its jobs are recorded, as every mcpi job is: in this test's cache, not the user's.
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--samples", "2e5", "--processes", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for row in ("Dask LocalCluster", "mcpi (local pool)", "mcpi (Celery, private broker)"):
        assert f"{row}" in done.stdout and "x the Pool's rate" in done.stdout, done.stdout
    # mcpi's two rows have the same exact mean, bit for bit.
    means = {
        line.split("mean ")[1]
        for line in done.stdout.splitlines()
        if line.strip().startswith("mcpi (") and "mean " in line
    }
    assert len(means) == 1, done.stdout
