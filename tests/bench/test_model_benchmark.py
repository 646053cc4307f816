"""benchmarks/models.py runs every backend on the same model and prints the ratios."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import run_benchmark

pytestmark = pytest.mark.integration


def test_the_model_benchmark_runs_every_backend(tmp_path: Path) -> None:
    # Its jobs are recorded, as every mcpi job is: in this test's cache, not the user's.
    out = run_benchmark("models.py", "--samples", "2e5", "--processes", "2", cache=tmp_path)
    for row in ("Dask LocalCluster", "mcpi (local pool)", "mcpi (Celery, private broker)"):
        assert f"{row}" in out and "x the Pool's rate" in out, out
    # mcpi's two rows have the same exact mean, bit for bit.
    means = {
        line.split("mean ")[1]
        for line in out.splitlines()
        if line.strip().startswith("mcpi (") and "mean " in line
    }
    assert len(means) == 1, out
