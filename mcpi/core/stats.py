"""Statistics of a dart count: the π estimate, its uncertainty, and throughput figures.

Each dart hits with probability p = π/4 (up to the kernel's discretisation, see
:mod:`mcpi.core.kernel`), independently, so the hit count is Binomial(N, p) and
π̂ = 4 · hits / N with standard error 4 · sqrt(p̂ (1 - p̂) / N).

The 95 % interval is Wilson's score interval for p, scaled by 4. For the large N this
tool is made for it coincides with the textbook Wald interval π̂ ± 1.96 · SE; for a
handful of darts it stays inside [0, 4] and keeps its coverage, where Wald's collapses
to a point when every dart hits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

#: Two-sided 95 % standard-normal quantile.
Z95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class Estimate:
    """π estimated from ``hits`` of ``darts``."""

    darts: int
    hits: int
    pi: float
    std_error: float
    ci_low: float
    ci_high: float

    @property
    def error(self) -> float:
        """Signed error against the true π."""
        return self.pi - math.pi

    @property
    def error_in_std_errors(self) -> float:
        return self.error / self.std_error if self.std_error else math.inf

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2


def estimate(hits: int, darts: int, z: float = Z95) -> Estimate:
    """π̂, its standard error and a Wilson interval from an exact count.

    >>> e = estimate(785_398, 1_000_000)
    >>> round(e.pi, 6), round(e.std_error, 6)
    (3.141592, 0.001642)
    >>> e.ci_low < math.pi < e.ci_high
    True
    """
    if darts < 1 or not 0 <= hits <= darts:
        raise ValueError(f"invalid count: {hits} hits of {darts} darts")
    p = hits / darts
    low, high = wilson_interval(hits, darts, z)
    return Estimate(
        darts=darts,
        hits=hits,
        pi=4 * p,
        std_error=4 * math.sqrt(p * (1 - p) / darts),
        ci_low=4 * low,
        ci_high=4 * high,
    )


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion."""
    p = successes / trials
    z2n = z * z / trials
    centre = (p + z2n / 2) / (1 + z2n)
    spread = z * math.sqrt(p * (1 - p) / trials + z2n / (4 * trials)) / (1 + z2n)
    # At 0 or N successes the bound is exactly 0 or 1; rounding must not move it.
    low = 0.0 if successes == 0 else max(0.0, centre - spread)
    high = 1.0 if successes == trials else min(1.0, centre + spread)
    return low, high


@dataclass(frozen=True, slots=True)
class HostThroughput:
    """What one host contributed to a job.

    ``darts_per_second`` is the host's share of the cluster rate (its darts over the
    job's wall time: the rows add up to the cluster-wide figure);
    ``darts_per_busy_second`` is the rate of one of its worker slots while computing.
    """

    host: str
    darts: int
    chunks: int
    busy_seconds: float
    darts_per_second: float
    darts_per_busy_second: float


@dataclass(slots=True)
class HostWork:
    """Work one host has done so far: darts and chunks counted, seconds spent counting."""

    darts: int = 0
    chunks: int = 0
    busy_seconds: float = 0.0

    def add(self, darts: int, seconds: float) -> None:
        self.darts += darts
        self.chunks += 1
        self.busy_seconds += seconds

    def absorb(self, other: HostWork) -> None:
        """Add the work recorded in ``other``."""
        self.darts += other.darts
        self.chunks += other.chunks
        self.busy_seconds += other.busy_seconds


def host_throughput(work: Mapping[str, HostWork], wall_seconds: float) -> list[HostThroughput]:
    """Per-host throughput rows, busiest host first."""
    rows = [
        HostThroughput(
            host=host,
            darts=w.darts,
            chunks=w.chunks,
            busy_seconds=w.busy_seconds,
            darts_per_second=rate(w.darts, wall_seconds),
            darts_per_busy_second=rate(w.darts, w.busy_seconds),
        )
        for host, w in work.items()
    ]
    return sorted(rows, key=lambda r: (-r.darts, r.host))


def rate(darts: int, seconds: float) -> float:
    """Darts per second, infinite for an instantaneous run."""
    return darts / seconds if seconds > 0 else math.inf
