"""Control variates: the design's sums on any split, and every interval's coverage by
simulation, for the Black–Scholes call with its discounted terminal price (mean S) as
control — plain Monte Carlo and randomized QMC, at a fixed size and to a precision.

Each simulated job is computed by the functions the workers and the hub run: the control
design's exact sums (:func:`mcpi.core.model.chunk_sums`, :func:`rqmc_chunk_sums`), the
estimate from :mod:`mcpi.core.control`, the looks from :mod:`mcpi.core.precision`.
Seeds are fixed, so every number is reproducible; the bands allow about two binomial
standard errors either side of 95 %.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mcpi.core.control import control_design, control_estimate, replicate_control_estimate
from mcpi.core.exact import OutputEstimate
from mcpi.core.model import ModelError, chunk_sums, rqmc_chunk_sums
from mcpi.core.precision import Precision, ReplicatePrecision, Sums, looks
from mcpi.core.sampler import DEFAULT_REPLICATES, PRECISION_REPLICATES, RQMC
from mcpi.models import builtin

EXACT = builtin.black_scholes_call(100.0, 100.0, 1.0, 0.05, 0.2)
CONTROL = builtin.call.controls["terminal"]
DESIGN = control_design(builtin.call, CONTROL, builtin.call.call({}).kwargs)
CALL = DESIGN.call({})
#: Per replicate: (Σx, Σx², Σy, Σy², Σxy, Σ(xy)²) — the price, the control, their product.
GROUP = 2 * len(DESIGN.outputs)


def mc_estimate(seed: int, samples: int) -> OutputEstimate:
    s = chunk_sums(DESIGN, CALL, seed, 0, samples)
    return control_estimate("price", samples, (s[0], s[1]), (s[2], s[3]), s[4], 100.0)


def rqmc_sums(seed: int, first: int, stop: int, replicates: int = DEFAULT_REPLICATES) -> Sums:
    parts = [
        rqmc_chunk_sums(DESIGN, CALL, seed, replicates, r, first, stop) for r in range(replicates)
    ]
    return tuple(map(sum, zip(*parts, strict=True)))


def rqmc_estimate(sums: Sums, points: int) -> OutputEstimate:
    groups = RQMC(len(sums) // GROUP, 1).groups(sums, GROUP)
    five = [g[:5] for g in groups]
    return replicate_control_estimate("price", points, five, 100.0)  # type: ignore[arg-type]


def covers(estimate: OutputEstimate) -> bool:
    return estimate.ci_low <= EXACT <= estimate.ci_high


def test_the_design_s_sums_are_the_same_whatever_the_split() -> None:
    whole = chunk_sums(DESIGN, CALL, 3, 0, 4 * 4096)
    halves = [chunk_sums(DESIGN, CALL, 3, a, a + 2 * 4096) for a in (0, 2 * 4096)]
    assert whole == tuple(map(sum, zip(*halves, strict=True)))
    assert DESIGN.outputs == ("price", "terminal", "price_x_terminal")


@pytest.mark.simulation
def test_plain_monte_carlo_covers_and_cuts_the_variance_about_6_9_times() -> None:
    found = [mc_estimate(seed, 4 * 4096) for seed in range(400)]
    assert 0.93 <= np.mean([covers(f) for f in found]) <= 0.97
    # 1/(1 − ρ²) = 6.88 analytically (ESTIMATORS.md)
    assert 6.5 < float(np.mean([f.variance_reduction for f in found])) < 7.3


@pytest.mark.simulation
def test_plain_monte_carlo_to_a_precision_covers() -> None:
    """Chow and Robbins' rule on the residual variance: 400 jobs to ±0.1 (a pilot of
    10,000 samples, then about 12,000), where the asymptotics are least favourable."""
    hits = 0
    for seed in range(400):
        rule = Precision(0.1, 10**7, block=CALL.block, variance_of=residual_variance)
        samples = looks(rule, lambda n, seed=seed: chunk_sums(DESIGN, CALL, seed, 0, n))[-1]
        found = mc_estimate(seed, samples)
        assert found.half_width <= 0.1
        hits += covers(found)
    assert 0.93 <= hits / 400 <= 0.97


def residual_variance(sums: Sums, samples: int) -> float:
    s = sums
    found = control_estimate("price", samples, (s[0], s[1]), (s[2], s[3]), s[4], 100.0)
    return found.std_error**2 * samples


@pytest.mark.simulation
@pytest.mark.parametrize(("points", "runs"), [(1 << 8, 1000), (1 << 12, 400)])
def test_randomized_qmc_s_replicate_interval_covers(points: int, runs: int) -> None:
    """The pooled coefficient, then each replicate's adjusted mean and their interval:
    the adjusted means are skewed as the plain ones are (the payoff's tail), and the
    skew-aware interval covers (measured 0.943 at 2^8, 0.948 at 2^12)."""
    hits = sum(covers(rqmc_estimate(rqmc_sums(s, 0, points), points)) for s in range(runs))
    assert 0.93 <= hits / runs <= 0.97


@pytest.mark.simulation
def test_randomized_qmc_to_a_precision_covers() -> None:
    """At the 64 replicates a precision job runs (:data:`PRECISION_REPLICATES`): 400
    jobs to ±1e-3, which stop after 1,024 or 2,048 points a replicate (measured 0.960;
    to ±4e-4 0.930, to ±1e-4 0.947)."""
    replicates = PRECISION_REPLICATES
    sampler = RQMC(replicates, 1)

    def half_width(sums: Sums, samples: int) -> float:
        return rqmc_estimate(sums, sampler.points(samples)).half_width

    hits = 0
    for seed in range(100_000, 100_400):
        rule = ReplicatePrecision(1e-3, 1 << 24, sampler, GROUP, half_width_of=half_width)
        samples, sums = 0, ()
        while (total := rule.next_total(sums, samples)) is not None:
            first, stop = sampler.points(samples), sampler.points(total)
            more = rqmc_sums(seed, first, stop, replicates)
            sums = tuple(map(sum, zip(sums, more, strict=True))) if sums else more
            samples = total
        found = rqmc_estimate(sums, sampler.points(samples))
        assert found.half_width <= 1e-3
        hits += covers(found)
    assert 0.93 <= hits / 400 <= 0.97


def test_what_cannot_be_a_control_is_refused_in_one_line() -> None:
    with pytest.raises(ModelError, match="model e takes a generator"):
        builtin.euler.with_control("y", lambda u: u[:, 0], 0.5)
    with pytest.raises(ModelError, match="control 'price' must be a name, not an output's"):
        builtin.call.with_control("price", lambda u: u[:, 0], 0.5)
    bad = builtin.call.with_control("nan", lambda u: u[:, 0], math.nan)
    with pytest.raises(ModelError, match="control nan: its mean must be finite"):
        bad.controls["nan"].known_mean({})
