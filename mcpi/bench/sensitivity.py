"""Sobol' indices: mcpi beside SALib and scipy, on the same function and sample count.

For the Ishigami function (a=7, b=0.1; exact indices in closed form) and N design
points, N·(d + 2) evaluations for every tool:

* **SALib** (the reference library of sensitivity analysis): ``sample.sobol(problem, N,
  calc_second_order=False, seed=…)``, the function evaluated by numpy over the whole
  sample in one process, then ``analyze.sobol(problem, Y, calc_second_order=False,
  num_resamples=100, conf_level=0.95, seed=…)``: its intervals are a bootstrap's
  (``S1 ± S1_conf``);
* **scipy** ``stats.sobol_indices(func=…, n=N, dists=…, rng=…)`` and its
  ``.bootstrap(confidence_level=0.95, n_resamples=100)``, at the small size only (its
  bootstrap re-evaluates the estimators on every resample in Python: 28 s at N = 2^14
  on this machine, and proportionally longer at 2^20);
* **mcpi**: ``Session.sensitivity("ishigami", N, seed=…)`` on a warm local pool of P
  processes (and, given a cluster, through Celery): R = 16 scrambled replicates, the
  interval from their spread.

Each row is the median wall time over a few seeds (sampling, evaluation and analysis),
the largest error of the six indices against the exact ones, the widest 95 %
half-width, and in how many runs *every* interval covered its exact index. The three
draw scrambled Sobol' points, so their errors are alike; what differs is the interval:
a bootstrap resamples points of one low-discrepancy set as if they were independent,
which they are not, while mcpi's replicates are independent by construction (their
coverage is measured in ``tests/core/test_sensitivity.py``).
"""

from __future__ import annotations

import importlib.util
import math
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from mcpi.models import builtin

#: Design points per job: a small study, and one large enough that the tools' costs show.
SIZES = (1 << 14, 1 << 20)
#: scipy's bootstrap runs up to this size (see the module's docstring).
SCIPY_AT_MOST = 1 << 14
SEEDS = (11, 12, 13, 14, 15)
RESAMPLES = 100


@dataclass(frozen=True)
class Found:
    """One tool's indices in one run: first-order and total, each (value, low, high)."""

    first: list[tuple[float, float, float]]
    total: list[tuple[float, float, float]]
    seconds: float

    def error(self) -> float:
        exact = builtin.ishigami_indices()
        return max(
            abs(value - truth)
            for found, truths in ((self.first, exact[0]), (self.total, exact[1]))
            for (value, _, _), truth in zip(found, truths, strict=True)
        )

    def widest(self) -> float:
        return max((high - low) / 2 for _, low, high in [*self.first, *self.total])

    def covers(self) -> bool:
        exact = builtin.ishigami_indices()
        return all(
            low <= truth <= high
            for found, truths in ((self.first, exact[0]), (self.total, exact[1]))
            for (_, low, high), truth in zip(found, truths, strict=True)
        )


@dataclass(frozen=True)
class Row:
    tool: str
    points: int
    runs: list[Found]

    @property
    def seconds(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def error(self) -> float:
        return statistics.median(r.error() for r in self.runs)

    @property
    def widest(self) -> float:
        return statistics.median(r.widest() for r in self.runs)

    @property
    def covered(self) -> int:
        return sum(r.covers() for r in self.runs)


def ishigami_x(x: np.ndarray) -> np.ndarray:
    """Ishigami of inputs already in (−π, π): what SALib and scipy evaluate."""
    s1 = np.sin(x[:, 0])
    value: np.ndarray = s1 + 7.0 * np.sin(x[:, 1]) ** 2 + 0.1 * x[:, 2] ** 4 * s1
    return value


def salib(points: int, seed: int) -> Found:
    from SALib.analyze import sobol as analyze
    from SALib.sample import sobol as sample

    problem = {"num_vars": 3, "names": ["x1", "x2", "x3"], "bounds": [[-math.pi, math.pi]] * 3}
    began = time.perf_counter()
    x = sample.sample(problem, points, calc_second_order=False, seed=seed)
    y = ishigami_x(x)
    found = analyze.analyze(
        problem, y, calc_second_order=False, num_resamples=RESAMPLES, conf_level=0.95, seed=seed
    )
    seconds = time.perf_counter() - began

    def triples(key: str) -> list[tuple[float, float, float]]:
        values, half = found[key], found[f"{key}_conf"]
        return [(float(v), float(v - h), float(v + h)) for v, h in zip(values, half, strict=True)]

    return Found(triples("S1"), triples("ST"), seconds)


def scipy_indices(points: int, seed: int) -> Found:
    from scipy import stats

    began = time.perf_counter()
    dists = [stats.uniform(loc=-math.pi, scale=2 * math.pi)] * 3
    result = stats.sobol_indices(
        func=lambda x: ishigami_x(x.T), n=points, dists=dists, rng=np.random.default_rng(seed)
    )
    boot = result.bootstrap(confidence_level=0.95, n_resamples=RESAMPLES)
    seconds = time.perf_counter() - began

    def triples(values: Any, interval: Any) -> list[tuple[float, float, float]]:
        return [
            (float(v), float(lo), float(hi))
            for v, lo, hi in zip(values, interval.low, interval.high, strict=True)
        ]

    return Found(
        triples(result.first_order, boot.first_order.confidence_interval),
        triples(result.total_order, boot.total_order.confidence_interval),
        seconds,
    )


def mcpi_indices(session: Any) -> Callable[[int, int], Found]:
    def run(points: int, seed: int) -> Found:
        began = time.perf_counter()
        found = session.sensitivity("ishigami", points, seed=seed)
        seconds = time.perf_counter() - began

        def triples(indices: Any) -> list[tuple[float, float, float]]:
            return [(e.value, e.ci_low, e.ci_high) for e in indices.values()]

        return Found(triples(found.first), triples(found.total), seconds)

    return run


def available() -> dict[str, bool]:
    return {name: importlib.util.find_spec(name) is not None for name in ("SALib", "scipy")}


def rows(
    sessions: dict[str, Any], sizes: tuple[int, ...] = SIZES, seeds: tuple[int, ...] = SEEDS
) -> Iterator[Row]:
    """Each tool's row at each size: the peers (where installed), then mcpi in each of
    ``sessions`` (a name: an open :class:`mcpi.Session`)."""
    have = available()
    tools: list[tuple[str, Callable[[int, int], Found]]] = []
    if have["SALib"]:
        tools.append(("SALib analyze.sobol (bootstrap)", salib))
    if have["scipy"]:
        tools.append(("scipy sobol_indices (bootstrap)", scipy_indices))
    tools += [(name, mcpi_indices(session)) for name, session in sessions.items()]
    for points in sizes:
        for tool, run in tools:
            if run is scipy_indices and points > SCIPY_AT_MOST:
                continue
            yield Row(tool, points, [run(points, seed) for seed in seeds])


def table(found: list[Row]) -> list[str]:
    lines = [
        f"{'tool':36} {'N':>9} {'evaluations':>12} {'wall s':>8} {'max |error|':>11} "
        f"{'widest ±':>9} {'all cover':>9}"
    ]
    for row in found:
        lines.append(
            f"{row.tool:36} {row.points:>9,} {row.points * 5:>12,} {row.seconds:>8.3f} "
            f"{row.error:>11.2e} {row.widest:>9.2e} {row.covered:>4}/{len(row.runs)}"
        )
    return lines
