"""Antithetic pairs: the design's sums on any split, what cannot be paired refused, and
the intervals' coverage by simulation for the Black–Scholes call — plain Monte Carlo and
randomized QMC, at a fixed size and to a precision — with the gain the pairs report.

Each simulated job is computed by the functions the workers and the hub run: the
antithetic design's exact sums (:func:`mcpi.core.model.chunk_sums`,
:func:`rqmc_chunk_sums`), the estimates of :mod:`mcpi.core.antithetic`, the looks of
:mod:`mcpi.core.precision`. Seeds are fixed; the bands allow about two binomial standard
errors either side of 95 %.
"""

from __future__ import annotations

import numpy as np
import pytest

from mcpi.core.antithetic import antithetic_design, antithetic_gain, replicate_antithetic_gain
from mcpi.core.exact import OutputEstimate, output_estimate, replicate_estimate
from mcpi.core.model import ModelError, chunk_sums, rqmc_chunk_sums
from mcpi.core.precision import Precision, ReplicatePrecision, Sums, looks
from mcpi.core.sampler import DEFAULT_REPLICATES, PRECISION_REPLICATES, RQMC
from mcpi.models import builtin

EXACT = builtin.black_scholes_call(100.0, 100.0, 1.0, 0.05, 0.2)
DESIGN = antithetic_design(builtin.call)
CALL = DESIGN.call({})
#: Per replicate: the pair means' (Σ, Σ²), then the payoff's at u alone.
GROUP = 2 * len(DESIGN.outputs)


def mc_estimate(sums: Sums, samples: int) -> OutputEstimate:
    pair, single = (sums[0], sums[1]), (sums[2], sums[3])
    return antithetic_gain(output_estimate("price", samples, *pair), samples, single, pair)


def rqmc_sums(seed: int, first: int, stop: int, replicates: int = DEFAULT_REPLICATES) -> Sums:
    parts = [
        rqmc_chunk_sums(DESIGN, CALL, seed, replicates, r, first, stop) for r in range(replicates)
    ]
    return tuple(map(sum, zip(*parts, strict=True)))


def rqmc_estimate(sums: Sums, points: int) -> OutputEstimate:
    sampler = RQMC(len(sums) // GROUP, 1)
    pairs, singles = sampler.pairs(sums, GROUP, 0), sampler.pairs(sums, GROUP, 1)
    estimate = replicate_estimate("price", points, pairs)
    return replicate_antithetic_gain(estimate, points, singles, pairs)


def covers(estimate: OutputEstimate) -> bool:
    return estimate.ci_low <= EXACT <= estimate.ci_high


def test_the_design_s_sums_are_the_same_whatever_the_split() -> None:
    whole = chunk_sums(DESIGN, CALL, 3, 0, 4 * 4096)
    halves = [chunk_sums(DESIGN, CALL, 3, a, a + 2 * 4096) for a in (0, 2 * 4096)]
    assert whole == tuple(map(sum, zip(*halves, strict=True)))
    assert DESIGN.outputs == ("price", "price_at_u")


def test_a_pair_is_the_model_at_u_and_at_its_mirror() -> None:
    u = np.array([[0.1], [0.5], [0.95]])
    paired = DESIGN.uniform(u, **CALL.kwargs)  # type: ignore[misc]
    at_u = builtin.call.uniform(u, **CALL.kwargs)  # type: ignore[misc]
    mirrored = builtin.call.uniform(1 - u, **CALL.kwargs)  # type: ignore[misc]
    assert np.array_equal(paired[:, 0], (at_u + mirrored) / 2)
    assert np.array_equal(paired[:, 1], at_u)


def test_what_cannot_be_paired_is_refused_in_one_line() -> None:
    with pytest.raises(ModelError, match=r"model e takes a generator .* antithetic pairs"):
        antithetic_design(builtin.euler)


@pytest.mark.simulation
def test_plain_monte_carlo_covers_and_halves_the_variance_per_evaluation() -> None:
    found = [mc_estimate(chunk_sums(DESIGN, CALL, s, 0, 4 * 4096), 4 * 4096) for s in range(400)]
    assert 0.93 <= np.mean([covers(f) for f in found]) <= 0.97
    # corr(f(u), f(1 − u)) = −0.501: a cut of 1/(1 + ρ) = 2.00 per evaluation (ESTIMATORS.md)
    assert 1.9 < float(np.mean([f.variance_reduction for f in found])) < 2.1


@pytest.mark.simulation
def test_plain_monte_carlo_to_a_precision_covers() -> None:
    """Chow and Robbins' rule on the pairs' means, as on any output: 400 jobs to ±0.1."""
    hits = 0
    for seed in range(400):
        rule = Precision(0.1, 10**7, block=CALL.block)
        samples = looks(rule, lambda n, seed=seed: chunk_sums(DESIGN, CALL, seed, 0, n))[-1]
        found = mc_estimate(chunk_sums(DESIGN, CALL, seed, 0, samples), samples)
        assert found.half_width <= 0.1
        hits += covers(found)
    assert 0.93 <= hits / 400 <= 0.97


@pytest.mark.simulation
@pytest.mark.parametrize(("points", "runs"), [(1 << 8, 1000), (1 << 12, 400)])
def test_randomized_qmc_s_replicate_interval_covers(points: int, runs: int) -> None:
    found = [rqmc_estimate(rqmc_sums(s, 0, points), points) for s in range(runs)]
    assert 0.93 <= np.mean([covers(f) for f in found]) <= 0.97


@pytest.mark.simulation
def test_randomized_qmc_to_a_precision_covers() -> None:
    """At the 64 replicates a precision job runs, 300 jobs to ±1e-3."""
    sampler = RQMC(PRECISION_REPLICATES, 1)
    hits = 0
    for seed in range(100_000, 100_300):
        rule = ReplicatePrecision(1e-3, 1 << 24, sampler, GROUP)
        samples, sums = 0, ()
        while (total := rule.next_total(sums, samples)) is not None:
            more = rqmc_sums(seed, sampler.points(samples), sampler.points(total), 64)
            sums = tuple(map(sum, zip(sums, more, strict=True))) if sums else more
            samples = total
        found = rqmc_estimate(sums, sampler.points(samples))
        assert found.half_width <= 1e-3
        hits += covers(found)
    assert 0.93 <= hits / 300 <= 0.97
