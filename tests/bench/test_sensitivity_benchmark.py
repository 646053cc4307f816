"""benchmarks/sensitivity.py runs SALib, scipy and mcpi on the same design and prints them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import run_benchmark

pytestmark = pytest.mark.integration


def test_the_sensitivity_benchmark_runs_every_tool(tmp_path: Path) -> None:
    out = run_benchmark("sensitivity.py", "--quick", "--processes", "2", cache=tmp_path)
    rows = {line.split("  ")[0]: line for line in out.splitlines()[1:]}
    assert set(rows) == {
        "SALib analyze.sobol (bootstrap)",
        "scipy sobol_indices (bootstrap)",
        "mcpi, local pool of 2",
    }, out
    for line in rows.values():  # the same design points and evaluations for every tool
        assert " 4,096 " in line and " 20,480 " in line, out
    # mcpi's seeded runs are bit for bit the same on every machine: each interval covers.
    assert rows["mcpi, local pool of 2"].endswith("2/2"), out
