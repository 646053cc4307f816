"""`mcpi-hub bench` runs every backend on real processes and servers, and draws its plot."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from mcpi.bench.precision import MCPI_CELERY as PRECISION_CELERY
from mcpi.bench.precision import MCPI_DARTS as DARTS
from mcpi.bench.precision import MCPI_LOCAL as PRECISION_LOCAL
from mcpi.bench.small import CLI, LOCAL_CLI, POOL_SCRIPT, WARM
from mcpi.bench.suite import DASK, IPYPARALLEL, MCPI_CELERY, MCPI_LOCAL, POOL, POOL_AGAIN, RAY
from mcpi.cli import main
from tests.helpers import run_benchmark

pytestmark = pytest.mark.integration


def test_bench_measures_every_backend_and_plots(tmp_path: Path) -> None:
    plot = tmp_path / "bench.png"
    out, err = io.StringIO(), io.StringIO()
    args = ["bench", "--quick", "--sizes", "1e6,4e6", "--processes", "2", "--plot", str(plot)]
    status = main([*args, "--json"], {"MCPI_DEBUG": "1"}, out, err)
    assert status == 0, err.getvalue()
    report = json.loads(out.getvalue())

    assert report["skipped"] == {}, "every peer must run (pip install 'mcpi[bench]')"
    rows = {(r["backend"], r["darts"]): r for r in report["rows"]}
    for backend in (POOL, DASK, RAY, IPYPARALLEL, MCPI_LOCAL, MCPI_CELERY):
        for darts in (10**6, 4 * 10**6):
            assert rows[(backend, darts)]["rate"] > 0
    singles = ("seed: naive loop", "seed: task body", "reference kernel", "mcpi kernel")
    for single in (*singles, "raw PCG64", "PCG64 steps"):
        assert any(r["backend"] == single and r["rate"] > 0 for r in report["rows"])
    # The limit is the generator's step rate, on every core.
    steps = next(r["rate"] for r in report["rows"] if r["backend"] == "PCG64 steps")
    assert report["limit"] == pytest.approx(2 * steps)
    assert rows[(POOL_AGAIN, 4 * 10**6)]["rate"] > 0  # the baseline, bracketing the others
    assert report["limit"] > 0 and report["baseline"] > 0

    # Overhead and the hub's memory, the same small and at the largest job accepted.
    assert report["tiny_tasks_per_second"] > 10 and report["first_result_seconds"] < 5
    # The Celery rows run over TLS; the same cluster in plain TCP, beside them.
    assert report["plain_rate"] > 0 and report["plain_tasks_per_second"] > 10
    rss = report["hub_rss_kib"]
    assert set(rss) == {str(10**9), str(10**16)}
    assert max(rss.values()) <= 2 * min(rss.values())

    # Small jobs and a sweep, each backend warm, every job's hits checked by the bench.
    small = report["small_jobs"]
    assert small["sizes"] == [1, 10**6]
    for backend in (CLI, LOCAL_CLI, POOL_SCRIPT, WARM, POOL, DASK):
        assert set(small["seconds"][backend]) == {"1", str(10**6)}
        assert all(s > 0 for s in small["seconds"][backend].values())
    assert set(small["sweep"]["seconds"]) == {WARM, POOL, DASK} and small["sweep"]["jobs"] == 10
    assert small["targets"] == []  # judged on the full sizes only

    # Time to precision: mcpi measured on the pool and on Celery, every peer beside it.
    seconds = report["time_to_precision"]
    rows = {(r["model"], r["backend"]): r for r in seconds["rows"]}
    for model in ("call", "ishigami", "pi"):
        for backend in (PRECISION_LOCAL, PRECISION_CELERY):
            row = rows[(model, backend)]
            assert row["how"] == "measured" and row["seconds"] > 0 and row["covered"] == [1, 1]
        for peer in (POOL, DASK, RAY):
            row = rows[(model, peer)]
            assert row["seconds"] > 0 and row["how"] in ("measured", "computed")
            assert row["how"] == "measured" or row["seconds"] == row["samples"] / row["rate"]
    assert rows[("pi", DARTS)]["seconds"] > 0
    assert len(seconds["targets"]) == 8 and seconds["skipped"] == {}
    points = seconds["points"]
    assert points["sobol_per_second"] > 0 and points["pcg64_per_second"] > 0

    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_precision_benchmark_script_runs() -> None:
    out = run_benchmark("precision.py", "--quick", "--no-celery", "--processes", "2", timeout=600)
    assert "Time to precision" in out and "multiprocessing.Pool" in out
    # The local rows, the darts and the points.
    assert out.count("(target >= ") == 5, out


@pytest.mark.parametrize(
    "args",
    [
        ["--sizes", "0"],
        ["--sizes", "1e13"],
        ["--sizes", ","],
        ["--plot", "x.svg"],
        ["--processes", "0"],
    ],
)
def test_bench_refuses_bad_options_in_one_line(args: list[str]) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["bench", *args], {}, out, err) == 2
    assert err.getvalue().count("\n") == 1 and "Traceback" not in err.getvalue()


def test_the_scale_benchmark_script_runs() -> None:
    out = run_benchmark("scale.py", "--quick", timeout=600)
    rows = [line.split() for line in out.splitlines() if line.startswith("    16")]
    assert [row[2] for row in rows] == ["cold", "warm"], out
    assert out.count("target: ") == 5, out
    assert "target: largest message: " in out, out


def test_the_dashboard_benchmark_script_runs() -> None:
    pytest.importorskip("starlette")
    out = run_benchmark("dashboard.py", "--quick", timeout=600)
    assert "with a dashboard page open" in out, out
    streamed = re.search(r"\((\d+) snapshots streamed", out)
    assert streamed and int(streamed.group(1)) >= 1, out  # the page was really streaming
    assert out.count("target: unwatched / watched ") == 1, out
