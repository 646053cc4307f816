"""Answers beyond the mean, from a job's exact counts: histograms, exceedance
probabilities and quantiles, each with an honest interval.

**Exceedance** P(X > T). Plain Monte Carlo: k of n samples exceed T, a binomial
proportion, with Wilson's score interval (:func:`mcpi.core.stats.wilson_interval`), which
keeps its coverage for rare events where the normal interval collapses. Randomized QMC:
the indicator 1{X > T} is one more integrand; each replicate's fraction is its estimate
and the interval is the replicates' (:func:`mcpi.core.exact.replicate_estimate`).

**Quantile** q_p = inf{x : F(x) ≥ p}, from a histogram with edges e_0 < … < e_K. The
empirical CDF at every edge, F̂(e_k) = (samples below e_k)/n, is exact. The point
estimate interpolates F̂ linearly within the bin where it crosses p. The 95 % interval
inverts intervals for F at the edges: with [F⁻(e_k), F⁺(e_k)] the 95 % interval for
F(e_k) (Wilson's, or the replicates'), the quantile's interval is [e_lo, e_hi],

    e_lo = the last edge e_k with F⁺(e_j) < p for every j ≤ k (or −∞ if none),
    e_hi = the first edge e_k with F⁻(e_j) > p for every j ≥ k (or +∞ if none).

Why it covers: let e* be the first edge with F(e*) ≥ p. If q_p < e_lo then e* ≤ e_lo, so
F⁺(e*) < p ≤ F(e*): the upper bound at the fixed edge e* failed, which happens with
probability at most 2.5 %; the other side likewise — so the interval covers with
probability ≥ 95 % whatever the bins (for i.i.d. samples it is the binomial
order-statistic interval [X_(l), X_(u)] widened to the bins' edges; Conover, *Practical
Nonparametric Statistics*, 3.2). It is never narrower than the bins allow: where it is
one or two bins wide, finer bins would narrow it, and the report says so. The tests
measure its coverage by simulation, plain and randomized.

**Refinement** (``run --refine``). Where the interval is bin-limited, a second pass over
the very same samples — they are a pure function of the seed — counts a histogram of
:data:`REFINED_BINS` bins inside the first interval (:func:`refinement`). Its edges
depend on the first pass's data, and the argument above survives that: Wilson's bounds
rise with the count below an edge, so F⁺ and F⁻ are nondecreasing in x, and the
interval from any edges, chosen however, contains the interval that inverts the bounds
at every x — {x : F⁻(x) ≤ p ≤ F⁺(x)} — which holds q_p whenever the bounds at the one
fixed point q_p hold p: with probability 95 %. The replicates' bounds under randomized
QMC need not be monotone, so there the tests' simulations are the evidence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mcpi.core.exact import SCALE_BITS, replicate_estimate, replicate_intervals
from mcpi.core.stats import Z95, wilson_interval
from mcpi.core.tallies import MAX_BINS, Exceedance, Histogram

#: Exact sums of an indicator that was 1 ``k`` times, in units of 2**-1074.
_ONE = 1 << SCALE_BITS


@dataclass(frozen=True)
class HistogramResult:
    """A histogram's exact counts (all samples; every replicate's, under RQMC)."""

    output: str
    edges: tuple[float, ...]
    counts: tuple[int, ...]
    under: int
    over: int
    log: bool

    @property
    def samples(self) -> int:
        return self.under + sum(self.counts) + self.over


@dataclass(frozen=True)
class ExceedanceEstimate:
    output: str
    threshold: float
    probability: float
    std_error: float
    ci_low: float
    ci_high: float
    #: Plain Monte Carlo: how many samples exceeded.
    exceeded: int | None = None


@dataclass(frozen=True)
class QuantileEstimate:
    output: str
    p: float
    value: float
    ci_low: float
    ci_high: float
    #: The interval spans two bins or fewer: finer bins there would narrow it.
    bin_limited: bool
    #: From a second pass's finer bins inside the first pass's interval (``--refine``).
    refined: bool = False


#: Bins of a refining second pass inside a quantile's first interval (a histogram holds
#: at most :data:`mcpi.core.tallies.MAX_BINS`).
REFINED_BINS = 1024


def refinement(quantiles: Sequence[QuantileEstimate]) -> tuple[float, float, int] | None:
    """The histogram (low, high, bins) of a second pass for one output's quantiles: its
    bin-limited intervals' span, :data:`REFINED_BINS` bins each; None if none is
    limited."""
    limited = [q for q in quantiles if q.bin_limited]
    if not limited:
        return None
    low, high = min(q.ci_low for q in limited), max(q.ci_high for q in limited)
    return low, high, min(MAX_BINS, REFINED_BINS * len(limited))


def histogram_result(name: str, histogram: Histogram, counts: Sequence[int]) -> HistogramResult:
    """``counts`` (under, bins, over: every group's added) as a result."""
    return HistogramResult(
        output=name,
        edges=tuple(float(e) for e in histogram.edges),
        counts=tuple(int(c) for c in counts[1:-1]),
        under=int(counts[0]),
        over=int(counts[-1]),
        log=histogram.log,
    )


def exceedance_estimate(
    name: str, tally: Exceedance, counts: Sequence[int], points: int
) -> ExceedanceEstimate:
    """P(X > T) from each group's count (one group under plain Monte Carlo, one per
    replicate under randomized QMC) of ``points`` samples each."""
    if len(counts) == 1:
        (k,) = counts
        low, high = wilson_interval(k, points, Z95)
        p = k / points
        return ExceedanceEstimate(
            name, tally.threshold, p, math.sqrt(p * (1 - p) / points), low, high, exceeded=k
        )
    estimate = replicate_estimate(name, points, [(k * _ONE, k * _ONE) for k in counts])
    return ExceedanceEstimate(
        name,
        tally.threshold,
        estimate.mean,
        estimate.std_error,
        max(0.0, estimate.ci_low),
        min(1.0, estimate.ci_high),
    )


def below_counts(groups: Sequence[Sequence[int]]) -> list[list[int]]:
    """Per group, the samples below each edge e_k (k = 0 … K) from its histogram counts
    (under, bins, over)."""
    found = []
    for counts in groups:
        below, running = [], 0
        for c in counts[:-1]:
            running += int(c)
            below.append(running)
        found.append(below)
    return found


def fraction_bounds(at: Sequence[Sequence[int]], points: int) -> tuple[list[float], list[float]]:
    """The 95 % interval of F(e_k) at every edge, from ``at[k]``: each group's samples
    below e_k (one group: Wilson's; R replicates: theirs, :func:`replicate_intervals`)."""
    if len(at[0]) == 1:
        bounds = [wilson_interval(int(counts[0]), points, Z95) for counts in at]
        return [b[0] for b in bounds], [b[1] for b in bounds]
    fractions = np.array(at, dtype=np.float64) / points
    low, high = replicate_intervals(fractions)
    return low.tolist(), high.tolist()


def quantile_estimate(
    name: str,
    p: float,
    histogram: Histogram,
    groups: Sequence[Sequence[int]],
    points: int,
) -> QuantileEstimate:
    """The ``p`` quantile of an output from its histogram's per-group counts
    (``points`` samples a group; see the module docstring)."""
    if not 0 < p < 1:
        raise ValueError(f"a quantile's level is in (0, 1), not {p}")
    edges = [float(e) for e in histogram.edges]
    below = below_counts(groups)  # per group, K + 1 edges
    at = [[group[k] for group in below] for k in range(len(edges))]  # per edge, per group
    lower, upper = fraction_bounds(at, points)
    total = points * len(groups)
    pooled = [sum(column) / total for column in at]

    low = -math.inf
    for k in range(len(edges)):
        if upper[k] >= p:
            break
        low = edges[k]
    high = math.inf
    for k in range(len(edges) - 1, -1, -1):
        if lower[k] <= p:
            break
        high = edges[k]
    value = _interpolate(edges, pooled, p)
    inside = sum(1 for e in edges if low < e < high)
    limited = math.isfinite(low) and math.isfinite(high) and inside <= 1
    return QuantileEstimate(name, p, value, low, high, limited)


def target_half_width(found: QuantileEstimate) -> float:
    """A quantile's half-width as a precision rule sees it (``--output NAME@P``): 0 where
    more samples cannot narrow it — as narrow as the bins allow, or beyond the
    histogram — so that the rule stops there, and the report says why the target was
    not reached."""
    half_width = (found.ci_high - found.ci_low) / 2
    return 0.0 if found.bin_limited or not math.isfinite(half_width) else half_width


def rule_variance(found: QuantileEstimate, samples: int) -> float:
    """Plain Monte Carlo: the per-sample variance σ̂² whose z·σ̂/√n is the quantile's
    rule half-width, for Chow and Robbins' rule and its next look: a quantile's interval
    narrows as 1/√n, as a mean's does (its half-width ≈ z·√(p(1 − p))/(f(q_p)√n))."""
    return samples * (target_half_width(found) / Z95) ** 2


def _interpolate(edges: Sequence[float], cdf: Sequence[float], p: float) -> float:
    """Where the piecewise-linear CDF through (e_k, F̂(e_k)) first reaches p; ±∞ outside
    the histogram's range."""
    if cdf[0] >= p:
        return -math.inf
    for k in range(1, len(edges)):
        if cdf[k] >= p:
            a, b = cdf[k - 1], cdf[k]
            fraction = (p - a) / (b - a)
            return float(edges[k - 1] + fraction * (edges[k] - edges[k - 1]))
    return math.inf
