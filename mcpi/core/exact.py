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

:class:`ExactSum` (and :func:`exact_sum`) buckets the samples by sign and exponent (the
top 12 bits of each double) and adds, per bucket, the two 26-bit halves of the mantissas
and a count, which stay exact for up to 2**26 samples (a sum of 2**26 values below 2**26
is below 2**52); the few non-empty buckets are then combined as integers. Every
operation is an integer operation or an exact addition, so the result is the same on
every machine, whatever its SIMD width. The bucket pass is compiled (``_exact.c``,
built with the dart kernel): one pass of integer additions, ~1.5 ns a value (the squares
taken on the way, without a temporary), where numpy's pass, used where the compiled one
did not load, takes several passes and three ``bincount``s. Both fill the same buckets
with the same exact numbers, so the sums cannot differ; the tests check it.

On CPUs with AVX-512 the compiled module first takes every value within 64 binades of
the largest one of the call out of the buckets (the "window", :data:`EXACT_PASS` says
which path runs): as an integer ``m << (e - E + 64)`` below 2**117, added in 128-bit
lanes and returned to :class:`ExactSum` as one integer and its scale; ~0.5 ns a value.
Again only exact integer additions: the same sums, which the tests check against the
bucket path and against rational arithmetic.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from fractions import Fraction
from types import ModuleType

import numpy as np


def _load_compiled() -> ModuleType | None:
    try:
        compiled = importlib.import_module("mcpi.core._exact")
    except ImportError:  # not built here: numpy's pass does the same, slower
        return None
    return compiled


_compiled = _load_compiled()
#: Which bucket pass :class:`ExactSum` runs in this process.
EXACT_PASS = f"compiled, {_compiled.PATH}" if _compiled else "numpy"
#: Rows of buckets: the compiled pass spreads consecutive values over them (numpy's uses
#: the first). Their sums together stay below 2**52 (MAX_TERMS values of 26 bits).
_ROWS: int = _compiled.ROWS if _compiled else 1
_HIGH, _LOW, _COUNT = 0, 1, 2

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


class NotFinite(ValueError):
    """A value given to :class:`ExactSum`, or its square, is infinite or NaN."""


#: The biased exponent of infinities and NaNs.
_NOT_FINITE = 0x7FF


class ExactSum:
    """An exact running sum of float64 arrays: :meth:`add` them, then take :meth:`value`.

    Per bucket (sign and exponent) it keeps sums of the mantissas' 26-bit halves and a
    count, each exact while at most ``MAX_TERMS`` values have been added; they are
    folded into one Python integer then, and at the end. Arrays are taken in slices
    that stay in a core's cache: the passes over each slice cost far less than over a
    long array streamed from memory.
    """

    __slots__ = ("_first", "_stop", "_table", "_terms", "_total")

    def __init__(self) -> None:
        self._total = 0
        # Per row and cell, the sums of the high and low mantissa halves and the count.
        # Cell c is the bucket of sign s and biased exponent e, c = 2e + s: the two signs
        # of one exponent side by side.
        self._table = np.zeros((_ROWS, _BUCKETS, 3), dtype=np.uint64)
        self._clear()

    def _clear(self) -> None:
        self._terms = 0
        # The buckets touched since the last fold: [first, stop).
        self._first, self._stop = _BUCKETS, 0

    def add(self, values: np.ndarray) -> None:
        """Add every value of ``values`` (float64; any shape).

        Raises :class:`NotFinite` if one is infinite or NaN (the sum is void then).
        """
        flat = _flat(values)
        if _compiled is not None:
            self._add_compiled(flat, _compiled, square=False)
        else:
            self._add_numpy(_finite(flat))

    def add_squares(self, values: np.ndarray) -> None:
        """Add the IEEE square of every value of ``values``.

        Raises :class:`NotFinite` if a square is not finite (``|x| >= MAX_MAGNITUDE``, or
        infinite or NaN; the sum is void then).
        """
        flat = _flat(values)
        if _compiled is not None:
            self._add_compiled(flat, _compiled, square=True)
        else:
            with np.errstate(over="ignore", invalid="ignore"):  # refused just below
                squares = flat * flat
            self._add_numpy(_finite(squares))

    def _add_compiled(self, flat: np.ndarray, compiled: ModuleType, square: bool) -> None:
        # Lean on purpose: a model's chunk makes two calls per block of a few thousand
        # values, so this method's own cost counts against every sample.
        done, size = 0, flat.size
        while done < size:
            if self._terms >= MAX_TERMS:
                self._fold()
            room = MAX_TERMS - self._terms
            part = flat if done == 0 and size <= room else flat[done : done + room]
            first, stop, top, high, low, largest = compiled.add(part, self._table, square)
            if largest == _NOT_FINITE:
                raise NotFinite("a value or its square is not finite")
            if top or high or low:  # the window's share (see _exact.c), exact
                window = (top << 128) + (high << 64) + low
                scale = (largest if largest > 1 else 1) - 65
                self._total += window << scale if scale >= 0 else window >> -scale
            self._terms += part.size
            if first < self._first:
                self._first = first
            if stop > self._stop:
                self._stop = stop
            done += part.size

    def _add_numpy(self, flat: np.ndarray) -> None:
        for first in range(0, flat.size, SLICE_TERMS):
            part = flat[first : first + SLICE_TERMS]
            if not part.size:
                continue
            if self._terms + part.size > MAX_TERMS:
                self._fold()
            bits = part.view(np.uint64)
            cell = (((bits >> 51) & 0xFFE) | (bits >> 63)).astype(np.intp)  # 2 exponent + sign
            # Only the range of cells present: data rarely spans more than a few dozen.
            low_bucket, stop = int(cell.min()), int(cell.max()) + 1
            cell -= low_bucket
            span = stop - low_bucket
            row = self._table[0, low_bucket:stop]
            # bincount sums in float64: exact, as every partial sum is an integer < 2**52.
            high = ((bits >> _HALF) & _HALF_MASK).astype(np.float64)
            row[:, _HIGH] += np.bincount(cell, weights=high, minlength=span).astype(np.uint64)
            low = (bits & _HALF_MASK).astype(np.float64)
            row[:, _LOW] += np.bincount(cell, weights=low, minlength=span).astype(np.uint64)
            row[:, _COUNT] += np.bincount(cell, minlength=span).astype(np.uint64)
            self._terms += part.size
            self._first, self._stop = min(self._first, low_bucket), max(self._stop, stop)

    def value(self) -> int:
        """The exact sum of everything added, in units of 2**-1074."""
        self._fold()
        return self._total

    def _fold(self) -> None:
        total = 0
        touched = self._table[:, self._first : max(self._first, self._stop)]
        cells = touched.sum(axis=0)  # below 2**52 together (see _ROWS)
        for offset in np.nonzero(cells[:, _COUNT])[0].tolist():
            c = self._first + offset
            biased, negative = c >> 1, c & 1
            high, low, count = (int(v) for v in cells[offset])
            mantissas = (high << _HALF) + low
            if biased:  # normal numbers carry the implicit leading bit
                mantissas += count << 52
            term = mantissas << (max(biased, 1) - 1)
            total += -term if negative else term
        self._total += total
        touched[...] = 0
        self._clear()


def _flat(values: np.ndarray) -> np.ndarray:
    """``values`` as one contiguous float64 row (itself, where it is one already)."""
    if (
        type(values) is np.ndarray
        and values.ndim == 1
        and values.dtype == np.float64
        and values.flags.c_contiguous
    ):
        return values
    return np.ascontiguousarray(values, dtype=np.float64).reshape(-1)


def _finite(values: np.ndarray) -> np.ndarray:
    if not np.isfinite(values).all():
        raise NotFinite("a value or its square is not finite")
    return values


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
