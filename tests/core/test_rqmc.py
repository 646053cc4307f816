"""Randomized QMC's interval: its coverage by simulation, for every built-in with a
uniform form, at fixed sizes and under the precision rule that doubles the points.

Each simulated job is a real one, computed by the functions the workers and the hub
run: each replicate's exact sums from :func:`mcpi.core.model.rqmc_chunk_sums`, the
interval from :func:`mcpi.core.exact.replicate_estimate`, the looks from
:class:`mcpi.core.precision.ReplicatePrecision`. Seeds are fixed, so every number here
is reproducible; with 1,000 runs a coverage's binomial noise is ±0.7 % (one standard
error), which the 93–97 % band allows about two of either side of 95 %.

``python -m tests.core.test_rqmc`` prints the table the docs quote.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pytest

from mcpi.core.exact import OutputEstimate, replicate_estimate
from mcpi.core.model import Model, rqmc_chunk_sums
from mcpi.core.precision import PILOT_POINTS, ReplicatePrecision
from mcpi.core.sampler import DEFAULT_REPLICATES, PRECISION_REPLICATES, RQMC
from mcpi.models import builtin


@dataclass(frozen=True)
class Case:
    model: Model
    params: dict[str, float | int]
    #: A precision target a job reaches after one to four doublings of the pilot, at the
    #: replicates a precision job runs by default.
    half_width: float

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def exact(self) -> float:
        call = self.model.call(self.params)
        return self.model.exact_values(call.kwargs)[self.model.outputs[0]]


CASES = [
    Case(builtin.pi, {}, 1.5e-3),
    Case(builtin.ball, {"d": 3}, 5e-3),
    Case(builtin.call, {}, 8e-4),
    Case(builtin.ishigami, {}, 5e-4),
]
#: Heavy-tailed: one replicate in a few hundred carries an error far larger than the
#: rest, which inflates s on most runs, so the interval is conservative (as the
#: literature measured: 0.995–1.000 at R = 8–32, ESTIMATORS.md), more so as n grows.
CONSERVATIVE = {"ishigami"}
RUNS = 1000
#: Jobs to a precision: 400 runs of 64 replicates put the binomial noise at ±1.1 %.
PRECISION_RUNS = 400


class Job:
    """One randomized QMC job of a case: R replicates, grown point by point range."""

    def __init__(self, case: Case, seed: int, replicates: int = DEFAULT_REPLICATES) -> None:
        self.case, self.seed = case, seed
        self.call = case.model.call(case.params)
        self.sampler = RQMC(replicates, case.model.dimension(self.call.kwargs))
        self.points = 0
        self.group = 2 * len(case.model.outputs)
        self.sums = (0,) * self.sampler.width(self.group)

    def grow(self, points: int) -> None:
        """Every replicate to ``points`` points."""
        for replicate in range(self.sampler.replicates):
            chunk = rqmc_chunk_sums(
                self.case.model,
                self.call,
                self.seed,
                self.sampler.replicates,
                replicate,
                self.points,
                points,
            )
            self.sums = tuple(a + b for a, b in zip(self.sums, chunk, strict=True))
        self.points = points

    def estimate(self) -> OutputEstimate:
        pairs = self.sampler.pairs(self.sums, self.group, 0)
        return replicate_estimate(self.case.name, self.points, pairs, self.case.exact)

    def to_precision(self, half_width: float) -> OutputEstimate:
        """Grown look by look, as the hub's rule says, to ``half_width``."""
        rule = ReplicatePrecision(
            half_width, self.sampler.replicates << 20, self.sampler, self.group
        )
        samples = 0
        while (total := rule.next_total(self.sums, samples)) is not None:
            self.grow(self.sampler.points(total))
            samples = total
        return self.estimate()


def covered(estimate: OutputEstimate) -> bool:
    return estimate.ci_low <= estimate.exact <= estimate.ci_high  # type: ignore[operator]


def fixed_coverage(case: Case, points: int, runs: int = RUNS, base: int = 0) -> float:
    hits = 0
    for seed in range(base, base + runs):
        job = Job(case, seed)
        job.grow(points)
        hits += covered(job.estimate())
    return hits / runs


def sequential_coverage(
    case: Case, runs: int = PRECISION_RUNS, base: int = 0, replicates: int = PRECISION_REPLICATES
) -> tuple[float, list[int]]:
    hits, stops = 0, []
    for seed in range(base, base + runs):
        job = Job(case, seed, replicates)
        estimate = job.to_precision(case.half_width)
        assert estimate.half_width <= case.half_width
        hits += covered(estimate)
        stops.append(job.points)
    return hits / runs, stops


def assert_honest(case: Case, coverage: float) -> None:
    assert coverage >= 0.93, f"{case.name}: the 95% interval covered in {coverage:.1%} of runs"
    if case.name not in CONSERVATIVE:
        assert coverage <= 0.97, f"{case.name}: the 95% interval covered in {coverage:.1%}"


@pytest.mark.simulation
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_interval_covers_at_a_fixed_size(case: Case) -> None:
    assert_honest(case, fixed_coverage(case, 256, base=1_000_000))


@pytest.mark.simulation
def test_the_call_s_interval_covers_at_a_larger_size_too() -> None:
    """The call's replicate means are skewed at every n (one point in the outermost
    cell of each replicate carries the payoff's unbounded tail), and Student's t alone
    covers less as n grows (0.93 at 2^8, 0.92 at 2^12); the skew-aware union holds."""
    assert_honest(CASES[2], fixed_coverage(CASES[2], 4096, runs=500, base=2_000_000))


@pytest.mark.simulation
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_precision_rule_covers_although_it_looks_repeatedly(case: Case) -> None:
    coverage, stops = sequential_coverage(case, base=3_000_000)
    assert_honest(case, coverage)
    # A target the rule reaches at several looks, some after doubling its pilot twice.
    looks = sorted(set(stops))
    assert len(looks) >= 2 and looks[-1] >= 4 * PILOT_POINTS, looks


def main() -> int:
    print("model      n=2^8   n=2^12  --precision  (stops, points per replicate)")
    for case in CASES:
        small = fixed_coverage(case, 256, base=1_000_000)
        large = fixed_coverage(case, 4096, runs=500, base=2_000_000)
        rule, stops = sequential_coverage(case, base=3_000_000)  # at 64 replicates
        spread = {p: stops.count(p) for p in sorted(set(stops))}
        print(f"{case.name:9}  {small:.3f}   {large:.3f}   {rule:.3f}        {spread}")
    # Why a precision job runs 64 replicates, not 16 (mcpi.core.sampler).
    few, _ = sequential_coverage(Case(builtin.call, {}, 4e-4), base=300_000, replicates=16)
    print(f"call to ±4e-4 at 16 replicates: {few:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
