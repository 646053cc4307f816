"""Exact sums: equal to exact rational arithmetic, and to themselves however they are split."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcpi.core import exact
from mcpi.core.exact import SCALE_BITS, exact_sum, mean_and_variance, output_estimate, to_float

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


def rational(values: np.ndarray) -> Fraction:
    return sum((Fraction(v) for v in values.tolist()), Fraction(0))


def scaled(values: np.ndarray) -> int:
    total = rational(values) * 2**SCALE_BITS
    assert total.denominator == 1
    return total.numerator


ADVERSARIAL = [
    np.array([1e308, 1e308, -1e308]),  # an ordered float sum overflows here
    np.array([1e308, -1e308, 1e308]),
    np.array([5e-324, -5e-324, 2.5e-320, 2.2250738585072014e-308, -2.2250738585072014e-308]),
    np.array([0.0, -0.0, 0.0]),
    np.array([1e16, 1.0, -1e16]),  # cancellation: a float sum loses the 1.0
    np.array([0.1] * 10 + [-1.0]),
    np.array([2.0**-1022, 2.0**-1074, 2.0**1023, -(2.0**1023)]),
]


@pytest.mark.parametrize("values", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_adversarial_sums_are_exact(values: np.ndarray) -> None:
    assert exact_sum(values) == scaled(values)


@settings(max_examples=300, deadline=None)
@given(st.lists(finite, min_size=0, max_size=60))
def test_any_values_sum_exactly(values: list[float]) -> None:
    array = np.array(values, dtype=np.float64)
    assert exact_sum(array) == scaled(array)


@settings(max_examples=200, deadline=None)
@given(st.lists(finite, min_size=1, max_size=60), st.data())
def test_sums_do_not_depend_on_split_or_order(values: list[float], data: st.DataObject) -> None:
    array = np.array(values, dtype=np.float64)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(values)), max_size=5)))
    parts = np.split(array, cuts)
    order = data.draw(st.permutations(range(len(parts))))
    assert sum(exact_sum(parts[i]) for i in order) == exact_sum(array)


def test_many_terms_across_the_batch_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # The per-call batch bound is where a bucket's float64 sum could stop being exact:
    # sums across batches must still be exact.
    monkeypatch.setattr(exact, "MAX_TERMS", 7)
    monkeypatch.setattr(exact, "SLICE_TERMS", 5)
    values = np.random.default_rng(3).standard_normal(100) * 1e10
    assert exact_sum(values) == scaled(values)


def test_a_million_large_mantissas_stay_exact() -> None:
    # Every mantissa bit set, same exponent: the worst case for a bucket's partial sums.
    values = np.full(1 << 20, np.nextafter(2.0, 1.0))
    assert exact_sum(values) == scaled(values[:1]) * (1 << 20)


def test_statistics_are_rounded_once_from_exact_sums() -> None:
    values = np.random.default_rng(5).standard_normal(1001) * 3 + 1e6
    n = values.size
    s1, s2 = exact_sum(values), exact_sum(values * values)
    mean, variance = mean_and_variance(n, s1, s2)
    assert mean == rational(values) / n
    squares = sum((Fraction(v) * Fraction(v) for v in values.tolist()), Fraction(0))
    exact_squares = sum((Fraction(float(v * v)) for v in values.tolist()), Fraction(0))
    assert variance == (exact_squares - rational(values) ** 2 / n) / (n - 1)
    # Squares are each rounded once (x*x in IEEE): close to the exact squares' variance.
    true_variance = (squares - rational(values) ** 2 / n) / (n - 1)
    assert float(variance) == pytest.approx(float(true_variance), rel=1e-6)
    e = output_estimate("x", n, s1, s2, exact=1e6)
    assert e.mean == float(mean)
    assert to_float(s1) == float(rational(values))
    assert e.std_error == math.sqrt(variance / n)
    assert e.ci_low < e.mean < e.ci_high
    assert e.error == e.mean - 1e6


def test_a_single_sample_has_no_spread() -> None:
    e = output_estimate("x", 1, exact_sum(np.array([2.5])), exact_sum(np.array([6.25])))
    assert (e.mean, e.variance, e.std_error) == (2.5, 0.0, 0.0)
    with pytest.raises(ValueError):
        mean_and_variance(0, 0, 0)
