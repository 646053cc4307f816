"""The precision target's stopping rule: its looks, and its coverage by simulation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from mcpi.core.kernel import dart_sums
from mcpi.core.precision import MAX_GROWTH, MIN_GROWTH, MIN_PILOT, Precision, Sums, looks
from mcpi.core.stats import Z95
from tests.helpers import pi_estimate as estimate

P = math.pi / 4


def pi_target(half_width: float, max_darts: int) -> Precision:
    """π's precision target: its one output is binary, 4·1{hit}."""
    return Precision(half_width, max_darts, binary=4.0)


def binomial_stream(rng: np.random.Generator) -> object:
    """hits among the first n darts of one simulated stream (consistent prefixes)."""
    counted = {0: 0}

    def hits_at(darts: int) -> int:
        last = max(n for n in counted if n <= darts)
        counted[darts] = counted[last] + int(rng.binomial(darts - last, P))
        return counted[darts]

    return hits_at


def as_sums(hits_at: object) -> object:
    """The pi model's exact sums over the first n darts of a hit-counting stream."""

    def sums_at(darts: int) -> Sums:
        return dart_sums(hits_at(darts))  # type: ignore[operator]

    return sums_at


def reached(target: Precision, hits: int, darts: int) -> bool:
    return target.reached(dart_sums(hits), darts)


def next_look(target: Precision, hits: int, darts: int) -> int:
    return target.next_look(dart_sums(hits), darts)


@pytest.mark.simulation
@pytest.mark.parametrize("half_width", [0.02, 0.005])
def test_intervals_cover_pi_although_looked_at_repeatedly(half_width: float) -> None:
    rng = np.random.default_rng(20261125)
    target = pi_target(half_width, 10**9)
    runs, covered, darts_used = 3000, 0, []
    n_star = (Z95 * 4 * math.sqrt(P * (1 - P)) / half_width) ** 2
    for _ in range(runs):
        hits_at = binomial_stream(rng)
        darts = looks(target, as_sums(hits_at))[-1]  # type: ignore[arg-type]
        e = estimate(hits_at(darts), darts)  # type: ignore[operator]
        assert e.half_width <= half_width
        covered += e.ci_low <= math.pi <= e.ci_high
        darts_used.append(darts)
    # 95 % nominal; 3000 runs put the binomial noise of the rate at ±0.4 %.
    assert covered / runs >= 0.94
    # Efficient: close to the fixed-sample minimum n*, never far beyond.
    assert np.mean(darts_used) / n_star < 1.1


def test_looks_grow_within_bounds_and_stop_at_the_bound() -> None:
    target = pi_target(1e-6, 10**9)
    hits_at = binomial_stream(np.random.default_rng(1))
    made = looks(target, as_sums(hits_at))  # type: ignore[arg-type]
    assert made[-1] == 10**9
    assert made == sorted(made)
    for before, after in itertools.pairwise(made):
        assert before * MIN_GROWTH <= after or after == target.max_samples
        assert after <= before * MAX_GROWTH


def test_pilot_is_small_but_not_tiny() -> None:
    assert pi_target(0.5, 10**9).pilot() == MIN_PILOT
    assert pi_target(1e-5, 10**16).pilot() == pytest.approx(9.6e9, rel=0.01)
    assert pi_target(1e-5, 1000).pilot() == 1000


def test_a_degenerate_count_does_not_stop_early() -> None:
    # Every dart hit: the naive variance estimate is 0 (a naive rule would stop at
    # once); with the 1/n term the rule needs n >= z/H darts.
    target = pi_target(1e-4, 10**9)
    assert not reached(target, MIN_PILOT, MIN_PILOT)
    assert target.variance(dart_sums(MIN_PILOT), MIN_PILOT) == 0
    assert Precision.rule_half_width(0.0, MIN_PILOT) == pytest.approx(Z95 / MIN_PILOT)


def test_next_look_aims_at_the_needed_darts() -> None:
    target = pi_target(1e-3, 10**12)
    darts = 10**6
    hits = round(P * darts)
    following = next_look(target, hits, darts)
    assert reached(target, round(P * following), following)
    assert not reached(target, round(P * following * 0.97), round(following * 0.97))


@pytest.mark.parametrize("half_width", [0.0, -1.0, 4.0, math.inf, math.nan])
def test_invalid_targets_are_refused(half_width: float) -> None:
    with pytest.raises(ValueError, match="half-width"):
        pi_target(half_width, 10**9)


def skewed_stream(rng: np.random.Generator) -> object:
    """Exact (Σx, Σx²) of the first n samples of one simulated lognormal stream."""
    from mcpi.core.exact import exact_sum

    counted: dict[int, tuple[int, int]] = {0: (0, 0)}

    def sums_at(samples: int) -> tuple[int, int]:
        last = max(n for n in counted if n <= samples)
        fresh = rng.lognormal(0.0, 1.0, samples - last)
        s1, s2 = counted[last]
        counted[samples] = (s1 + exact_sum(fresh), s2 + exact_sum(fresh * fresh))
        return counted[samples]

    return sums_at


@pytest.mark.simulation
def test_a_model_precision_target_covers_the_mean_with_a_skewed_output() -> None:
    from mcpi.core.exact import output_estimate

    rng = np.random.default_rng(20261203)
    mean, variance = math.exp(0.5), (math.e - 1) * math.e  # lognormal(0, 1)
    half_width = 0.02
    target = Precision(half_width, 10**8, output=0, block=64)
    n_star = variance * (Z95 / half_width) ** 2
    runs, covered, used = 800, 0, []
    for _ in range(runs):
        sums_at = skewed_stream(rng)
        samples, sums = 0, ()
        while (total := target.next_total(sums, samples)) is not None:
            assert total % 64 == 0 and total > samples
            samples, sums = total, sums_at(total)  # type: ignore[operator]
        e = output_estimate("x", samples, *sums)
        assert e.half_width <= half_width
        covered += e.ci_low <= mean <= e.ci_high
        used.append(samples)
    # 95 % nominal; a heavy right tail makes small samples undercover, so allow a
    # little more than the binomial noise of 800 runs (±0.8 %).
    assert covered / runs >= 0.93
    assert np.mean(used) / n_star < 1.15


def test_a_model_target_stops_at_its_bound_in_whole_blocks() -> None:
    target = Precision(1e-9, 100_000, output=1, block=4096)
    sums_at = skewed_stream(np.random.default_rng(2))
    samples, sums = 0, ()
    made = []
    while (total := target.next_total(sums, samples)) is not None:
        made.append(total)
        s1, s2 = sums_at(total)  # type: ignore[operator]
        samples, sums = total, (0, 0, s1, s2)
    assert made[0] == 12_288 and made[-1] == 102_400  # the bound, rounded up to blocks
    assert all(m % 4096 == 0 for m in made)
