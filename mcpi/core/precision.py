"""Precision targets: how many darts to throw until π's interval is narrow enough.

``mcpi-hub estimate --precision H`` throws darts in stages and stops at the first
*look* (the end of a stage) where the 95 % interval's half-width is at most H. Looking
at the data again and again and stopping when it looks good can break an interval's
coverage, so the rule is a classic one whose coverage is known to survive it:
**Chow and Robbins (1965)**, "On the asymptotic theory of fixed-width sequential
confidence intervals for the mean". With σ̂² = 16 p̂(1 − p̂) the variance of one dart's
contribution to π̂ = 4·hits/n, stop at the first look n ≥ n₀ where

    z · sqrt(σ̂² + 1/n) / sqrt(n)  ≤  H        (z = 1.96)

(the 1/n term keeps a degenerate early variance estimate from stopping the job), and
where the reported Wilson interval is also no wider than 2H. As H → 0 this interval
covers π with probability tending to 95 %, and the darts used tend to the minimum
n* = (zσ/H)², both almost surely. The rule is safe to check repeatedly because it
stops on the *variance* estimate alone, which settles quickly, never on where π̂ is.
``tests/core/test_precision.py`` checks the coverage by simulation at a coarse H, where the
asymptotics are least favourable.

Looks are few: a pilot stage of about 1/16 of the data-free worst case (σ² ≤ 4) with
at least ``MIN_PILOT`` darts, then each look jumps to the darts the current estimate
of σ says are needed (with 1 % to spare), at least ``MIN_GROWTH`` and at most
``MAX_GROWTH`` times the darts so far. The looks depend only on H, the bound and the
counts, so the same seed and target stop at the same dart on any cluster, with any
chunking: the same answer, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from mcpi.core.exact import mean_and_variance
from mcpi.core.stats import Z95, estimate

#: Darts in the smallest pilot stage: enough for a meaningful variance estimate,
#: too few to cost anything.
MIN_PILOT = 10_000
#: The pilot's share of the data-free worst case (its fraction of the darts needed if
#: σ² were its bound 4).
PILOT_FRACTION = 1 / 16
#: Each look throws at least this factor more darts than the last (few looks)...
MIN_GROWTH = 1.25
#: ...and at most this factor more (a misjudged early σ cannot overshoot far).
MAX_GROWTH = 16.0
#: Darts planned for a look beyond what σ̂ says, so that the look usually is the last.
SPARE = 1.01


@dataclass(frozen=True, slots=True)
class PrecisionTarget:
    """Stop when π's 95 % interval has half-width ≤ ``half_width``, or at ``max_darts``."""

    half_width: float
    max_darts: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.half_width) and 0 < self.half_width < 4):
            raise ValueError(
                f"a precision is a half-width between 0 and 4, not {self.half_width!r}"
            )
        if self.max_darts < 1:
            raise ValueError("the dart bound must be at least 1")

    def next_total(self, sums: tuple[int, ...], darts: int) -> int | None:
        return next_total(self, sums[0] if sums else 0, darts)


def rule_half_width(hits: int, darts: int, z: float = Z95) -> float:
    """The Chow–Robbins half-width at ``darts`` darts: z·sqrt(σ̂² + 1/n)/sqrt(n)."""
    p = hits / darts
    return z * math.sqrt(16 * p * (1 - p) + 1 / darts) / math.sqrt(darts)


def reached(target: PrecisionTarget, hits: int, darts: int) -> bool:
    """True if a look at ``darts`` darts with ``hits`` hits may stop."""
    if darts < min(MIN_PILOT, target.max_darts):
        return False
    return (
        rule_half_width(hits, darts) <= target.half_width
        and estimate(hits, darts).half_width <= target.half_width
    )


def pilot_darts(target: PrecisionTarget) -> int:
    """Darts of the first stage."""
    worst_case = (Z95 * 2 / target.half_width) ** 2
    return min(target.max_darts, max(MIN_PILOT, math.ceil(worst_case * PILOT_FRACTION)))


def next_look(target: PrecisionTarget, hits: int, darts: int) -> int:
    """The darts (in all) at the next look, after a look at ``darts`` did not stop."""
    p = hits / darts
    variance = 16 * p * (1 - p) + 1 / darts
    needed = math.ceil(SPARE * variance * (Z95 / target.half_width) ** 2)
    grown = max(needed, math.ceil(darts * MIN_GROWTH))
    return min(target.max_darts, grown, math.floor(darts * MAX_GROWTH))


class StoppingRule(Protocol):
    """When a job stops: the one rule the hub runs stage by stage and simulations replay."""

    def next_total(self, sums: tuple[int, ...], darts: int) -> int | None:
        """The darts (in all) to have counted at the next look, or None to stop there.

        ``sums`` are the exact sums counted so far: ``(hits,)`` for π, each output's
        (Σx, Σx²) for a model (empty before the first look).
        """
        ...


@dataclass(frozen=True, slots=True)
class FixedSize:
    """A job of exactly ``darts`` darts (or samples): one stage."""

    darts: int

    def next_total(self, sums: tuple[int, ...], darts: int) -> int | None:
        return None if darts >= self.darts else self.darts


def next_total(target: PrecisionTarget, hits: int, darts: int) -> int | None:
    """The Chow–Robbins rule: the pilot, then a look at a time until it may stop.

    >>> target = PrecisionTarget(0.01, 10**9)
    >>> next_total(target, 0, 0) == pilot_darts(target)
    True
    """
    if not darts:
        return pilot_darts(target)
    if reached(target, hits, darts) or darts >= target.max_darts:
        return None
    return next_look(target, hits, darts)


def looks(rule: StoppingRule, hits_at: Callable[[int], int]) -> list[int]:
    """The looks a job would make, given a function counting hits among the first n darts.

    For simulations and tests: the same :meth:`~StoppingRule.next_total` the hub runs.
    """
    made: list[int] = []
    darts = 0
    sums: tuple[int, ...] = ()
    while (total := rule.next_total(sums, darts)) is not None:
        made.append(total)
        darts, sums = total, (hits_at(total),)
    return made


#: A model's first look has at least this many samples (rounded up to whole blocks).
MIN_MODEL_PILOT = 10_000


@dataclass(frozen=True, slots=True)
class ModelPrecision:
    """Stop when output ``output``'s 95 % half-width is ≤ ``half_width``, or at ``max_samples``.

    The same Chow–Robbins rule as for π, with the sample variance s² of the chosen
    output in place of 16 p̂(1 − p̂): stop at the first look where
    z·sqrt(s² + 1/n)/sqrt(n) ≤ H. A model's variance has no data-free bound, so the
    pilot is a fixed ``MIN_MODEL_PILOT`` samples; every look is whole blocks of
    ``block`` samples, and depends only on the exact sums, so the same seed stops at
    the same sample on any cluster, with any chunking.
    """

    half_width: float
    max_samples: int
    output: int  # the index of the targeted output
    block: int = 1

    def __post_init__(self) -> None:
        if not (math.isfinite(self.half_width) and self.half_width > 0):
            raise ValueError(f"a precision is a positive half-width, not {self.half_width!r}")
        if self.max_samples < 1 or self.block < 1 or self.output < 0:
            raise ValueError("invalid precision target")

    def next_total(self, sums: tuple[int, ...], darts: int) -> int | None:
        bound = self._whole(self.max_samples)
        if not darts:
            return min(bound, self._whole(MIN_MODEL_PILOT))
        if darts >= bound:
            return None
        variance = float(
            mean_and_variance(darts, sums[2 * self.output], sums[2 * self.output + 1])[1]
        )
        if self.rule_half_width(variance, darts) <= self.half_width:
            return None
        needed = math.ceil(SPARE * (variance + 1 / darts) * (Z95 / self.half_width) ** 2)
        grown = max(needed, math.ceil(darts * MIN_GROWTH))
        return min(bound, self._whole(min(grown, math.floor(darts * MAX_GROWTH))))

    @staticmethod
    def rule_half_width(variance: float, samples: int, z: float = Z95) -> float:
        """The Chow–Robbins half-width: z·sqrt(s² + 1/n)/sqrt(n)."""
        return z * math.sqrt(variance + 1 / samples) / math.sqrt(samples)

    def _whole(self, samples: int) -> int:
        return -(-samples // self.block) * self.block
