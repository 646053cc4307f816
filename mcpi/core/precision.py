"""When a job stops: a fixed size, or a precision target, as one stopping rule.

The hub runs a job stage by stage: before each stage it asks the job's
:class:`StoppingRule` how many samples to have counted at the next *look* (the end of
the next stage), given the exact sums counted so far, and stops when the rule says
None. A fixed size (:class:`FixedSize`) is one stage. A precision target
(:class:`Precision`, ``--precision H``) adds a stage at a time until the 95 % interval
of its output has half-width at most H.

Looking at the data again and again and stopping when it looks good can break an
interval's coverage, so the rule is a classic one whose coverage is known to survive
it: **Chow and Robbins (1965)**, "On the asymptotic theory of fixed-width sequential
confidence intervals for the mean". With σ̂² the output's per-sample variance
estimate, stop at the first look n ≥ n₀ where

    z · sqrt(σ̂² + 1/n) / sqrt(n)  ≤  H        (z = 1.96)

(the 1/n term keeps a degenerate early variance estimate from stopping the job). σ̂² is
the sample variance s², except for a *binary* output (one whose samples are 0 or c,
such as ``pi``'s 4·1{hit}), whose estimate is c²p̂(1 − p̂) and whose report is c times
Wilson's interval (:func:`mcpi.core.exact.output_estimate`): the rule also waits for
that interval to be no wider than 2H. As H → 0 the interval covers the mean with
probability tending to 95 %, and the samples used tend to the minimum n* = (zσ/H)²,
both almost surely. The rule is safe to check repeatedly because it stops on the
*variance* estimate alone, which settles quickly, never on where the mean is.
``tests/core/test_precision.py`` checks the coverage by simulation at coarse H, where
the asymptotics are least favourable.

Looks are few: a pilot of at least ``MIN_PILOT`` samples (for a binary output, about
1/16 of the data-free worst case, σ ≤ c/2), then each look jumps to the samples the
current estimate of σ says are needed (with 1 % to spare), at least ``MIN_GROWTH`` and
at most ``MAX_GROWTH`` times the samples so far. Every look is whole blocks of the
model, and depends only on H, the bound and the exact sums, so the same seed and
target stop at the same sample on any cluster, with any chunking: the same answer, bit
for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from mcpi.core.exact import mean_and_variance, output_estimate, replicate_estimate, successes_of
from mcpi.core.sampler import MAX_POINTS, RQMC, power_of_two_at_most
from mcpi.core.stats import Z95

#: Samples in the smallest pilot stage: enough for a meaningful variance estimate,
#: too few to cost anything.
MIN_PILOT = 10_000
#: A binary output's pilot is this share of the data-free worst case (the samples
#: needed if σ were its bound c/2).
PILOT_FRACTION = 1 / 16
#: Each look counts at least this factor more samples than the last (few looks)...
MIN_GROWTH = 1.25
#: ...and at most this factor more (a misjudged early σ cannot overshoot far).
MAX_GROWTH = 16.0
#: Samples planned for a look beyond what σ̂ says, so that the look usually is the last.
SPARE = 1.01

#: Exact sums of a job's outputs: each output's (Σx, Σx²) in units of 2**-1074
#: (:mod:`mcpi.core.exact`), empty before the first look.
Sums = tuple[int, ...]


class StoppingRule(Protocol):
    """When a job stops: the one rule the hub runs stage by stage and simulations replay."""

    def next_total(self, sums: Sums, samples: int) -> int | None:
        """The samples (in all) to have counted at the next look, or None to stop.

        ``sums`` are the exact sums of the ``samples`` counted so far.
        """
        ...


@dataclass(frozen=True, slots=True)
class FixedSize:
    """A job of exactly ``samples`` samples (whole blocks): one stage."""

    samples: int

    def next_total(self, sums: Sums, samples: int) -> int | None:
        return None if samples >= self.samples else self.samples


@dataclass(frozen=True, slots=True)
class Precision:
    """Stop when output ``output``'s 95 % half-width is ≤ ``half_width``, or at ``max_samples``.

    ``block``: every look is whole blocks of the model. ``binary``: the output takes only
    the values 0 and this one (``pi``: 4), so its estimate is a scaled proportion.
    ``variance_of``: the per-sample variance σ̂² of what the job reports, from its sums
    and samples, where that is not the output's own: a control variate's residual
    variance (:mod:`mcpi.core.control`), to which Chow and Robbins' rule applies as
    it does to any mean's, the coefficient converging almost surely.
    """

    half_width: float
    max_samples: int
    output: int = 0
    block: int = 1
    binary: float | None = None
    variance_of: Callable[[Sums, int], float] | None = None

    def __post_init__(self) -> None:
        ceiling = math.inf if self.binary is None else self.binary
        if not (math.isfinite(self.half_width) and 0 < self.half_width < ceiling):
            within = "positive" if self.binary is None else f"between 0 and {self.binary:g}"
            raise ValueError(f"a precision is a half-width, {within}, not {self.half_width!r}")
        if self.max_samples < 1 or self.block < 1 or self.output < 0:
            raise ValueError("invalid precision target: the bound, block and output")
        if self.binary is not None and self.variance_of is not None:
            raise ValueError("a binary output's variance is its proportion's, not another's")

    @property
    def bound(self) -> int:
        """The most samples the job may count: ``max_samples`` in whole blocks."""
        return self._whole(self.max_samples)

    def next_total(self, sums: Sums, samples: int) -> int | None:
        """The pilot, then a look at a time until the rule may stop.

        >>> target = Precision(0.01, 10**9, binary=4.0)
        >>> target.next_total((), 0) == target.pilot()
        True
        """
        if not samples:
            return self.pilot()
        if samples >= self.bound or self.reached(sums, samples):
            return None
        return self.next_look(sums, samples)

    def pilot(self) -> int:
        """Samples of the first stage."""
        worst_case = 0.0
        if self.binary is not None:
            worst_case = (Z95 * (self.binary / 2) / self.half_width) ** 2
        pilot = max(MIN_PILOT, math.ceil(worst_case * PILOT_FRACTION))
        return min(self.bound, self._whole(pilot))

    def reached(self, sums: Sums, samples: int) -> bool:
        """True if a look at ``samples`` samples with ``sums`` may stop."""
        if samples < min(MIN_PILOT, self.bound):
            return False
        if self.rule_half_width(self.variance(sums, samples), samples) > self.half_width:
            return False
        if self.binary is None:
            return True  # the reported interval, z·s/√n, is within the rule's
        s1, s2 = self._pair(sums)
        wilson = output_estimate("", samples, s1, s2, binary=self.binary)
        return wilson.half_width <= self.half_width

    def next_look(self, sums: Sums, samples: int) -> int:
        """The samples (in all) at the next look, after a look at ``samples`` did not stop."""
        variance = self.variance(sums, samples) + 1 / samples
        needed = math.ceil(SPARE * variance * (Z95 / self.half_width) ** 2)
        grown = max(needed, math.ceil(samples * MIN_GROWTH))
        return min(self.bound, self._whole(min(grown, math.floor(samples * MAX_GROWTH))))

    def variance(self, sums: Sums, samples: int) -> float:
        """The per-sample variance estimate σ̂² the rule uses."""
        if self.variance_of is not None:
            return self.variance_of(sums, samples)
        s1, s2 = self._pair(sums)
        if self.binary is None:
            return float(mean_and_variance(samples, s1, s2)[1])
        p = successes_of(samples, s1, s2, self.binary) / samples
        return self.binary * self.binary * p * (1 - p)

    @staticmethod
    def rule_half_width(variance: float, samples: int, z: float = Z95) -> float:
        """The Chow–Robbins half-width: z·sqrt(σ̂² + 1/n)/sqrt(n)."""
        return z * math.sqrt(variance + 1 / samples) / math.sqrt(samples)

    def _pair(self, sums: Sums) -> tuple[int, int]:
        return sums[2 * self.output], sums[2 * self.output + 1]

    def _whole(self, samples: int) -> int:
        return -(-samples // self.block) * self.block


def looks(rule: StoppingRule, sums_at: Callable[[int], Sums]) -> list[int]:
    """The looks a job would make, given its exact sums over its first n samples.

    For simulations and tests: the same :meth:`~StoppingRule.next_total` the hub runs.
    """
    made: list[int] = []
    samples = 0
    sums: Sums = ()
    while (total := rule.next_total(sums, samples)) is not None:
        made.append(total)
        samples, sums = total, sums_at(total)
    return made


#: A randomized QMC job's first look: this many points per replicate (scipy's
#: ``qmc_quad`` takes 1024 too), or its bound if that is smaller.
PILOT_POINTS = 1 << 10


@dataclass(frozen=True, slots=True)
class ReplicatePrecision:
    """Randomized QMC: stop when output ``output``'s t interval over the replicates has
    half-width ≤ ``half_width``, doubling every replicate's points at each look, or at
    ``max_samples`` (in all; rounded down to the sampler's replicates times a power of two).
    ``half_width_of``, where given, is the half-width the rule holds to instead, from the
    sums and samples at a look: the widest of a job's Sobol' indices, as OpenTURNS'
    ``SobolSimulationAlgorithm`` stops on every index's interval, or a control-variate
    estimate's (:mod:`mcpi.core.sensitivity`, :mod:`mcpi.core.control`).

    The rule looks at the interval :func:`mcpi.core.exact.replicate_estimate` reports
    (its half-width: Student's t's, or wider where the replicates are skewed), after 1024
    points per replicate, 2048, 4096 … and stops at the first look where it is narrow
    enough. ``group`` is the integers each replicate holds in a job's sums
    (:attr:`mcpi.core.job.Job.group`). Unlike Chow–Robbins for plain Monte Carlo, no
    asymptotic result covers this rule (the literature's is for a fixed n): its
    coverage is checked by simulation in ``tests/core/test_rqmc.py``, as the
    fixed-size interval's is. The looks depend only on the exact sums, so the same seed
    stops at the same point on any cluster, with any chunking.
    """

    half_width: float
    max_samples: int
    sampler: RQMC
    group: int
    output: int = 0
    half_width_of: Callable[[Sums, int], float] | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.half_width) and self.half_width > 0):
            raise ValueError(f"a precision is a positive half-width, not {self.half_width!r}")
        if self.max_samples < self.sampler.replicates:
            raise ValueError(
                f"a bound of {self.max_samples:,} samples is less than one point for each of "
                f"the {self.sampler.replicates} replicates"
            )

    @property
    def bound(self) -> int:
        """The most samples: the replicates times the largest power of two that fits."""
        replicates = self.sampler.replicates
        return replicates * power_of_two_at_most(min(self.max_samples // replicates, MAX_POINTS))

    def next_total(self, sums: Sums, samples: int) -> int | None:
        if not samples:
            return min(self.bound, self.sampler.replicates * PILOT_POINTS)
        if samples >= self.bound or self.reached(sums, samples):
            return None
        return min(self.bound, 2 * samples)

    def reached(self, sums: Sums, samples: int) -> bool:
        """Whether the replicates' interval at ``samples`` samples is narrow enough."""
        if self.half_width_of is not None:
            return self.half_width_of(sums, samples) <= self.half_width
        pairs = self.sampler.pairs(sums, self.group, self.output)
        estimate = replicate_estimate("", self.sampler.points(samples), pairs)
        return estimate.half_width <= self.half_width
