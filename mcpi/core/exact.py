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

:class:`ExactSum` (and :func:`exact_sum`) is vectorised. It buckets the samples by
sign and exponent (the top 12 bits of each double) and adds, per bucket, the two
26-bit halves of the mantissas as float64, where a bucket's sum stays exact for up to
2**26 samples (a sum of 2**26 values below 2**26 is below 2**52); the few non-empty
buckets are then combined as integers. Every operation is an integer operation or an
exact float64 addition, so the result is the same on every machine, whatever its SIMD
width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

#: Every finite double is an integer multiple of 2**-SCALE_BITS.
SCALE_BITS = 1074
#: Values an accumulator takes before it folds its bucket sums into an integer: a
#: bucket's float64 sums of 26-bit halves stay exact up to 2**26 values.
MAX_TERMS = 1 << 26
#: Values taken in one slice: its few passes stay in a core's cache.
SLICE_TERMS = 1 << 13
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
    total = ExactSum()
    total.add(values)
    return total.value()


class ExactSum:
    """An exact running sum of float64 arrays: :meth:`add` them, then take :meth:`value`.

    Per bucket (sign and exponent) it keeps float64 sums of the mantissas' 26-bit halves
    and a count, each exact while at most ``MAX_TERMS`` values have been added; they are
    folded into one Python integer then, and at the end. Arrays are taken in slices
    that stay in a core's cache: the passes over each slice cost far less than over a
    long array streamed from memory.
    """

    __slots__ = ("_count", "_first", "_high", "_low", "_stop", "_terms", "_total")

    def __init__(self) -> None:
        self._total = 0
        self._high = np.zeros(_BUCKETS)
        self._low = np.zeros(_BUCKETS)
        self._count = np.zeros(_BUCKETS, dtype=np.int64)
        self._clear()

    def _clear(self) -> None:
        self._terms = 0
        # The buckets touched since the last fold: [first, stop).
        self._first, self._stop = _BUCKETS, 0

    def add(self, values: np.ndarray) -> None:
        """Add every value of ``values`` (finite float64; any shape)."""
        flat = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
        for first in range(0, flat.size, SLICE_TERMS):
            part = flat[first : first + SLICE_TERMS]
            if not part.size:
                continue
            if self._terms + part.size > MAX_TERMS:
                self._fold()
            bits = part.view(np.int64)
            bucket = (bits >> 52) & (_BUCKETS - 1)  # sign and biased exponent
            # Only the range of buckets present: data rarely spans more than a few dozen.
            low_bucket, stop = int(bucket.min()), int(bucket.max()) + 1
            bucket -= low_bucket
            span = stop - low_bucket
            high = ((bits >> _HALF) & _HALF_MASK).astype(np.float64)
            self._high[low_bucket:stop] += np.bincount(bucket, weights=high, minlength=span)
            low = (bits & _HALF_MASK).astype(np.float64)
            self._low[low_bucket:stop] += np.bincount(bucket, weights=low, minlength=span)
            self._count[low_bucket:stop] += np.bincount(bucket, minlength=span)
            self._terms += part.size
            self._first, self._stop = min(self._first, low_bucket), max(self._stop, stop)

    def value(self) -> int:
        """The exact sum of everything added, in units of 2**-1074."""
        self._fold()
        return self._total

    def _fold(self) -> None:
        total = 0
        touched = slice(self._first, max(self._first, self._stop))
        high, low, count = self._high[touched], self._low[touched], self._count[touched]
        for offset in np.nonzero(count)[0].tolist():
            b = self._first + offset
            biased = b & 0x7FF
            mantissas = (int(high[offset]) << _HALF) + int(low[offset])
            if biased:  # normal numbers carry the implicit leading bit
                mantissas += int(count[offset]) << 52
            term = mantissas << (max(biased, 1) - 1)
            total += -term if b & 0x800 else term
        self._total += total
        high[:], low[:], count[:] = 0, 0, 0
        self._clear()


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
