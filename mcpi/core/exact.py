"""Exact sums of float64 samples, and statistics rounded once from them.

A model job's mean and variance must not depend on how its samples were split into
chunks, on the order results arrive, or on retries. Floating-point addition is not
associative (numpy's pairwise ``sum`` even changes with memory alignment), so the sums
are kept *exactly*: every finite double is an integer multiple of 2**-1074, so
``x * 2**1074`` is an exact integer, and integer addition is exact and associative. A
chunk's result carries, for each output, the exact integers Σx·2**1074 and
Σx²·2**1074 (x² being the correctly rounded IEEE square of each sample: a pure function
of the sample); the hub adds them as Python integers and forms the mean and variance in
exact rational arithmetic, rounding once at the end. Nothing about chunking, order,
duplication or retries can change a bit of the result.

:func:`exact_sum` is vectorised. It buckets the samples by sign and exponent (the top
12 bits of each double) and adds, per bucket, the two 26-bit halves of the mantissas
as float64, where a bucket's sum stays exact for up to 2**26 samples per call (a sum of
2**26 values below 2**26 is below 2**52); the few non-empty buckets are then combined
as integers. Every operation is an integer operation or an exact float64 addition, so
the result is the same on every machine, whatever its SIMD width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

#: Every finite double is an integer multiple of 2**-SCALE_BITS.
SCALE_BITS = 1074
#: Samples one :func:`exact_sum` call adds exactly (see the module docstring).
MAX_TERMS = 1 << 26
#: Two-sided 95 % standard-normal quantile (as in :mod:`mcpi.core.stats`).
Z95 = 1.959963984540054

_HALF = 26
_HALF_MASK = (1 << _HALF) - 1
_BUCKETS = 1 << 12
#: Samples whose square is not finite (|x| ≥ this) cannot have an exact Σx².
MAX_MAGNITUDE = math.sqrt(np.finfo(np.float64).max)


def exact_sum(values: np.ndarray) -> int:
    """Σ values, exactly, as an integer in units of 2**-1074 (``values`` finite float64).

    >>> exact = Fraction(0.1) + Fraction(0.2) - Fraction(0.3)
    >>> exact_sum(np.array([0.1, 0.2, -0.3])) == exact * 2**1074
    True
    >>> exact_sum(np.array([1e308, 1e308, -1e308])) == exact_sum(np.array([1e308]))
    True
    """
    flat = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
    total = 0
    for first in range(0, flat.size, MAX_TERMS):
        total += _exact_sum(flat[first : first + MAX_TERMS])
    return total


def _exact_sum(values: np.ndarray) -> int:
    bits = values.view(np.int64)
    bucket = (bits >> 52) & (_BUCKETS - 1)  # sign and biased exponent
    high = np.bincount(
        bucket, weights=((bits >> _HALF) & _HALF_MASK).astype(np.float64), minlength=_BUCKETS
    )
    low = np.bincount(bucket, weights=(bits & _HALF_MASK).astype(np.float64), minlength=_BUCKETS)
    count = np.bincount(bucket, minlength=_BUCKETS)
    total = 0
    for b in np.flatnonzero(count).tolist():
        biased = b & 0x7FF
        mantissas = (int(high[b]) << _HALF) + int(low[b])
        if biased:  # normal numbers carry the implicit leading bit
            mantissas += int(count[b]) << 52
        term = mantissas << (max(biased, 1) - 1)
        total += -term if b & 0x800 else term
    return total


def to_float(scaled: int | Fraction) -> float:
    """The double nearest ``scaled`` · 2**-1074 (one correct rounding)."""
    return float(Fraction(scaled) / (1 << SCALE_BITS))


@dataclass(frozen=True, slots=True)
class OutputEstimate:
    """One output's mean over ``samples`` samples, its standard error and 95 % interval."""

    name: str
    samples: int
    mean: float
    variance: float
    std_error: float
    ci_low: float
    ci_high: float
    exact: float | None = None

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2

    @property
    def error(self) -> float | None:
        """Signed error against the exact answer, where the model declares one."""
        return None if self.exact is None else self.mean - self.exact

    @property
    def error_in_std_errors(self) -> float | None:
        error = self.error
        if error is None:
            return None
        return error / self.std_error if self.std_error else (0.0 if not error else math.inf)


def mean_and_variance(samples: int, sum1: int, sum2: int) -> tuple[Fraction, Fraction]:
    """Exact mean and unbiased sample variance from exact scaled sums (variance 0 if n = 1)."""
    if samples < 1:
        raise ValueError("no samples")
    scale = 1 << SCALE_BITS
    mean = Fraction(sum1, samples * scale)
    if samples == 1:
        return mean, Fraction(0)
    # Σ(x - x̄)² = Σx² - (Σx)²/n, exactly; a tiny negative value is impossible in exact
    # arithmetic but x² was rounded per sample, so clamp at 0.
    spread = Fraction(sum2, scale) - Fraction(sum1 * sum1, samples * scale * scale)
    return mean, max(Fraction(0), spread / (samples - 1))


def output_estimate(
    name: str, samples: int, sum1: int, sum2: int, exact: float | None = None, z: float = Z95
) -> OutputEstimate:
    """Mean, standard error and normal 95 % interval of one output, each rounded once.

    >>> e = output_estimate("x", 4, exact_sum(np.array([1.0, 2.0, 3.0, 4.0])),
    ...                     exact_sum(np.array([1.0, 4.0, 9.0, 16.0])))
    >>> e.mean, e.variance
    (2.5, 1.6666666666666667)
    """
    mean, variance = mean_and_variance(samples, sum1, sum2)
    std_error = math.sqrt(variance / samples)
    centre = float(mean)
    return OutputEstimate(
        name=name,
        samples=samples,
        mean=centre,
        variance=float(variance),
        std_error=std_error,
        ci_low=centre - z * std_error,
        ci_high=centre + z * std_error,
        exact=exact,
    )
