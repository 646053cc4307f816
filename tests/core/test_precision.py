"""The precision target's stopping rule: its looks, and its coverage by simulation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from mcpi.core.precision import (
    MAX_GROWTH,
    MIN_GROWTH,
    MIN_PILOT,
    PrecisionTarget,
    looks,
    next_look,
    pilot_darts,
    reached,
    rule_half_width,
)
from mcpi.core.stats import Z95, estimate

P = math.pi / 4


def binomial_stream(rng: np.random.Generator) -> object:
    """hits among the first n darts of one simulated stream (consistent prefixes)."""
    counted = {0: 0}

    def hits_at(darts: int) -> int:
        last = max(n for n in counted if n <= darts)
        counted[darts] = counted[last] + int(rng.binomial(darts - last, P))
        return counted[darts]

    return hits_at


@pytest.mark.parametrize("half_width", [0.02, 0.005])
def test_intervals_cover_pi_although_looked_at_repeatedly(half_width: float) -> None:
    rng = np.random.default_rng(20261125)
    target = PrecisionTarget(half_width, 10**9)
    runs, covered, darts_used = 3000, 0, []
    n_star = (Z95 * 4 * math.sqrt(P * (1 - P)) / half_width) ** 2
    for _ in range(runs):
        hits_at = binomial_stream(rng)
        darts = looks(target, hits_at)[-1]  # type: ignore[arg-type]
        e = estimate(hits_at(darts), darts)  # type: ignore[operator]
        assert e.half_width <= half_width
        covered += e.ci_low <= math.pi <= e.ci_high
        darts_used.append(darts)
    # 95 % nominal; 3000 runs put the binomial noise of the rate at ±0.4 %.
    assert covered / runs >= 0.94
    # Efficient: close to the fixed-sample minimum n*, never far beyond.
    assert np.mean(darts_used) / n_star < 1.1


def test_looks_grow_within_bounds_and_stop_at_the_bound() -> None:
    target = PrecisionTarget(1e-6, 10**9)
    hits_at = binomial_stream(np.random.default_rng(1))
    made = looks(target, hits_at)  # type: ignore[arg-type]
    assert made[-1] == 10**9
    assert made == sorted(made)
    for before, after in itertools.pairwise(made):
        assert before * MIN_GROWTH <= after or after == target.max_darts
        assert after <= before * MAX_GROWTH


def test_pilot_is_small_but_not_tiny() -> None:
    assert pilot_darts(PrecisionTarget(0.5, 10**9)) == MIN_PILOT
    assert pilot_darts(PrecisionTarget(1e-5, 10**16)) == pytest.approx(9.6e9, rel=0.01)
    assert pilot_darts(PrecisionTarget(1e-5, 1000)) == 1000


def test_a_degenerate_count_does_not_stop_early() -> None:
    # Every dart hit: the naive variance estimate is 0 (a naive rule would stop at
    # once); with the 1/n term the rule needs n >= z/H darts.
    target = PrecisionTarget(1e-4, 10**9)
    assert not reached(target, MIN_PILOT, MIN_PILOT)
    assert rule_half_width(MIN_PILOT, MIN_PILOT) == pytest.approx(Z95 / MIN_PILOT)


def test_next_look_aims_at_the_needed_darts() -> None:
    target = PrecisionTarget(1e-3, 10**12)
    darts = 10**6
    hits = round(P * darts)
    following = next_look(target, hits, darts)
    assert reached(target, round(P * following), following)
    assert not reached(target, round(P * following * 0.97), round(following * 0.97))


@pytest.mark.parametrize("half_width", [0.0, -1.0, 4.0, math.inf, math.nan])
def test_invalid_targets_are_refused(half_width: float) -> None:
    with pytest.raises(ValueError, match="half-width"):
        PrecisionTarget(half_width, 10**9)
