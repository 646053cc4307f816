"""Statistics every job shares: the binomial interval, and throughput figures.

A binary output (one whose samples are 0 or c) has a binomial count: π's darts each
hit with probability p = π/4 (up to the kernel's discretisation, see
:mod:`mcpi.core.kernel`), independently, so the hit count is Binomial(N, p), and
π̂ = 4 · hits / N has standard error 4 · sqrt(p̂ (1 - p̂) / N). Its 95 % interval is
Wilson's score interval for p, scaled by c (:func:`mcpi.core.exact.output_estimate`).
For the large N this tool is made for it coincides with the textbook Wald interval
π̂ ± 1.96 · SE; for a handful of darts it stays inside [0, 4] and keeps its coverage,
where Wald's collapses to a point when every dart hits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

#: Two-sided 95 % standard-normal quantile.
Z95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion.

    >>> low, high = wilson_interval(785_398, 1_000_000)
    >>> round(low, 6), round(high, 6)
    (0.784592, 0.786202)
    """
    p = successes / trials
    z2n = z * z / trials
    centre = (p + z2n / 2) / (1 + z2n)
    spread = z * math.sqrt(p * (1 - p) / trials + z2n / (4 * trials)) / (1 + z2n)
    # At 0 or N successes the bound is exactly 0 or 1; rounding must not move it.
    low = 0.0 if successes == 0 else max(0.0, centre - spread)
    high = 1.0 if successes == trials else min(1.0, centre + spread)
    return low, high


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (``p`` in (0, 1)).

    By bisection on its distribution function, P(T ≤ t) = 1 − ½·I_x(df/2, ½) for t > 0
    with x = df/(df + t²) and I the regularized incomplete beta function (Abramowitz and
    Stegun 26.7.1). For the degrees of freedom replicates give (7 to 1023) it agrees
    with scipy's ``t.ppf`` to about 1e-12 (the tests hold it to that); beyond ~10⁵ the
    log-gamma differences lose digits.

    >>> round(t_quantile(0.975, 15), 6), round(t_quantile(0.975, 1023), 6)
    (2.13145, 1.962286)
    """
    if not 0 < p < 1 or df < 1:
        raise ValueError(f"no quantile {p!r} of t with {df!r} degrees of freedom")
    if p < 0.5:
        return -t_quantile(1 - p, df)
    low, high = 0.0, 1.0
    while _t_below(high, df) < p:
        high *= 2
    for _ in range(200):
        middle = (low + high) / 2
        if middle in (low, high):
            break
        if _t_below(middle, df) < p:
            low = middle
        else:
            high = middle
    return high


def _t_below(t: float, df: int) -> float:
    """P(T ≤ t) for t ≥ 0."""
    square = t * t
    return 1 - 0.5 * _beta_regularized(df / 2, 0.5, df / (df + square), square / (df + square))


def _beta_regularized(a: float, b: float, x: float, y: float) -> float:
    """I_x(a, b), given x and y = 1 − x (each computed directly, so that neither loses its
    digits when the other is near 1), by its continued fraction (Lentz's method), the
    faster-converging side chosen as in Numerical Recipes' ``betai``."""
    if x <= 0:
        return 0.0
    if y <= 0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(y)
    )
    if x < (a + 1) / (a + b + 2):
        return front * _beta_fraction(a, b, x) / a
    return 1 - front * _beta_fraction(b, a, y) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 10_000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1) < 1e-16:
            break
    return result


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
