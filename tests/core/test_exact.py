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
from tests.helpers import HAS_AVX512

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


# The compiled bucket pass (mcpi/core/_exact.c) against numpy's: the same exact sums.


def test_the_compiled_pass_is_built_and_loaded_here() -> None:
    assert exact.EXACT_PASS.startswith("compiled")


def sums_both_ways(values: np.ndarray, squares: bool = False) -> tuple[int, int]:
    compiled, numpy_pass = exact.ExactSum(), exact.ExactSum()
    if squares:
        compiled.add_squares(values)
        numpy_pass._add_numpy(np.ascontiguousarray(values * values))
    else:
        compiled.add(values)
        numpy_pass._add_numpy(np.ascontiguousarray(values))
    return compiled.value(), numpy_pass.value()


@pytest.mark.parametrize("values", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_the_compiled_pass_sums_adversarial_values_exactly(values: np.ndarray) -> None:
    compiled, numpy_pass = sums_both_ways(values)
    assert compiled == numpy_pass == scaled(values)


@settings(deadline=None, max_examples=60)
@given(st.lists(st.floats(-1e150, 1e150, allow_nan=False), min_size=0, max_size=300))
def test_the_compiled_pass_and_its_squares_equal_numpy_and_rationals(values: list[float]) -> None:
    array = np.array(values, dtype=np.float64)
    compiled, numpy_pass = sums_both_ways(array)
    assert compiled == numpy_pass == scaled(array)
    compiled, numpy_pass = sums_both_ways(array, squares=True)
    assert compiled == numpy_pass == scaled(array * array)


def test_mixed_signs_and_exponents_in_long_arrays_sum_alike() -> None:
    rng = np.random.default_rng(3)
    values = rng.standard_normal(200_000) * 10.0 ** rng.integers(-300, 300, 200_000)
    values[::7] = -values[::7]
    values[::1000] = 5e-324
    compiled, numpy_pass = sums_both_ways(values)
    assert compiled == numpy_pass
    assert sums_both_ways(values[:50_000] * 1e-150, squares=True)[0] == exact_sum(
        (values[:50_000] * 1e-150) ** 2
    )


class BucketsOnly:
    """The compiled module, its bucket path only (as on a CPU without AVX-512)."""

    ROWS = exact._compiled.ROWS if exact._compiled else 1
    WORDS = exact._compiled.WORDS if exact._compiled else 1
    add = staticmethod(exact._compiled.add_buckets if exact._compiled else None)
    moments = staticmethod(exact._compiled.moments_buckets if exact._compiled else None)


def test_the_window_path_runs_where_the_cpu_has_avx512() -> None:
    with open("/proc/cpuinfo") as cpuinfo:
        flags = next((line for line in cpuinfo if line.startswith("flags")), "").split()
    running = exact.EXACT_PASS
    assert running == ("compiled, window" if "avx512dq" in flags else "compiled, buckets")


WINDOW_CASES = {
    # every tail length of the 8-value vectors, values over many binades, mixed signs
    **{
        f"length {n}": np.random.default_rng(n).standard_normal(n)
        * 2.0 ** np.random.default_rng(n + 100).integers(-80, 80, n)
        for n in range(0, 20)
    },
    # far more than 64 binades below the largest: those go to the buckets
    "below the window": np.array([1e150, 3.0, -2.5e-310, 1e-100, -1e150, 7.0, 0.0, -0.0, 1.5]),
    # past a spill (2048 values a lane), large mantissas at the top of the window, signs
    # alternating so that the positive and negative sums both fill
    "spills": np.nextafter(2.0, 3.0) * np.where(np.arange(50_001) % 3, 1.0, -1.0),
    "zeros and subnormals": np.array([0.0, 5e-324, -5e-324, 0.0, 2.2250738585072014e-308] * 9),
    "payoffs": np.maximum(np.random.default_rng(8).standard_normal(10_000) * 20.0, 0.0),
}


@pytest.mark.parametrize("name", list(WINDOW_CASES))
def test_the_window_and_the_buckets_give_the_same_exact_sums(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = WINDOW_CASES[name]
    for square in (False, True):
        taken = values * values if square else values
        fast = exact.ExactSum()
        (fast.add_squares if square else fast.add)(values)
        with monkeypatch.context() as patch:
            patch.setattr(exact, "_compiled", BucketsOnly)
            slow = exact.ExactSum()
            (slow.add_squares if square else slow.add)(values)
            assert slow.value() == fast.value() == scaled(taken), (name, square)


PATHS = {"window": exact._compiled, "buckets": BucketsOnly, "numpy": None}
#: Where this CPU lacks AVX-512, the compiled module takes its bucket pass: the window
#: pass is untested here, and its tests say so (skipped, with this reason).
NO_WINDOW = pytest.mark.skipif(
    not HAS_AVX512, reason="this CPU lacks AVX-512F/DQ: the exact sums' window pass is untested"
)
#: The paths, each a test parameter: the window pass skipped where the CPU lacks it.
PATH_PARAMS = [pytest.param("window", marks=NO_WINDOW), "buckets", "numpy"]
#: The paths this CPU runs.
RUNNABLE = [path for path in PATHS if HAS_AVX512 or path != "window"]


@NO_WINDOW
def test_the_window_pass_runs_where_this_cpu_has_avx512() -> None:
    # Where it can, the compiled module must take its fastest pass, and so the one the
    # "window" cases here exercise.
    assert exact.EXACT_PASS == "compiled, window"


@pytest.mark.parametrize("path", PATH_PARAMS)
@pytest.mark.parametrize(
    ("bad", "square"),
    [(math.inf, False), (-math.inf, False), (math.nan, False), (1e200, True), (math.nan, True)],
)
def test_a_value_or_square_that_is_not_finite_is_refused(
    path: str, bad: float, square: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exact, "_compiled", PATHS[path])
    values = np.random.default_rng(1).standard_normal(1001)
    values[517] = bad
    total = exact.ExactSum()
    with pytest.raises(exact.NotFinite):
        (total.add_squares if square else total.add)(values)
    # and the same values without it are taken (the positive control)
    values[517] = 1e100
    fresh = exact.ExactSum()
    (fresh.add_squares if square else fresh.add)(values)


def test_without_the_compiled_pass_numpy_sums_the_same() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['mcpi.core._exact'] = None\n"
        "import numpy as np\n"
        "from mcpi.core import exact\n"
        "v = np.random.default_rng(5).standard_normal(5000)\n"
        "s = exact.ExactSum(); s.add(v); s.add_squares(v)\n"
        "print(exact.EXACT_PASS, s.value())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    name, value = done.stdout.split()
    v = np.random.default_rng(5).standard_normal(5000)
    assert name == "numpy" and int(value) == scaled(v) + scaled(v * v)


@pytest.mark.parametrize("path", PATH_PARAMS)
def test_long_arrays_and_many_adds_keep_the_sum_exact(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The compiled pass folds every PIECE (16384) values into its accumulator, numpy's
    # every MAX_TERMS: here every 1000, to split one add across folds. Adds of every
    # length cross those boundaries at odd places.
    monkeypatch.setattr(exact, "_compiled", PATHS[path])
    monkeypatch.setattr(exact, "MAX_TERMS", 1000)
    rng = np.random.default_rng(4)
    values = rng.standard_normal(70_001) * 10.0 ** rng.integers(-20, 20, 70_001)
    split = exact.ExactSum()
    for part in np.split(values, [3333, 3334, 40_000, 40_000]):
        split.add(part)
    assert split.value() == exact_sum(values) == scaled(values)


EXTREMES = {
    # the accumulator's two ends: the largest doubles (and squares near the largest),
    # the smallest subnormals, and sums that cancel to them
    "largest": np.array([1.7976931348623157e308] * 1000 + [-1.7976931348623157e308] * 999),
    "squares near the top": np.array([1.3407807929942596e154, -1.3407807929942596e154] * 50),
    "smallest": np.array([5e-324, -5e-324, 5e-324, 1e-320, -2.5e-322] * 100),
    "cancel to the bottom": np.array([1e300, 5e-324, -1e300, 1e-310, 2.0**-1070]),
    "negative window": -np.abs(np.random.default_rng(9).standard_normal(5000)) * 1e200,
}


@pytest.mark.parametrize("path", PATH_PARAMS)
@pytest.mark.parametrize("name", list(EXTREMES))
def test_moments_equal_the_sums_of_the_values_and_their_squares(
    name: str, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exact, "_compiled", PATHS[path])
    values = EXTREMES[name]
    with np.errstate(over="ignore"):
        squares = values * values
    moments = exact.ExactMoments()
    if not np.isfinite(squares).all():
        with pytest.raises(exact.NotFinite):
            moments.add(values)
        total = exact.ExactSum()
        total.add(values)
        assert total.value() == scaled(values), name
        return
    for part in np.array_split(values, 3):
        moments.add(part)
    assert moments.sums() == (scaled(values), scaled(squares)), name


@settings(deadline=None, max_examples=60)
@given(
    st.lists(
        st.floats(-1e150, 1e150, allow_nan=False) | st.floats(-1e-300, 1e-300),
        min_size=0,
        max_size=300,
    ),
    st.sampled_from(RUNNABLE),
)
def test_moments_of_any_values_equal_rational_sums(values: list[float], path: str) -> None:
    array = np.array(values, dtype=np.float64)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(exact, "_compiled", PATHS[path])
        moments = exact.ExactMoments()
        moments.add(array)
        assert moments.sums() == (scaled(array), scaled(array * array))
