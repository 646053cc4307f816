"""Scrambled Sobol' points: scipy's sequence bit for bit before scrambling, any point reached
directly, nets in aligned blocks after, never 0 or 1; the compiled fill equals numpy's."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcpi.core import sobol
from mcpi.core.sobol import BITS, MAX_DIMS, direction_vectors, points, scrambled, to_unit, uniforms

qmc = pytest.importorskip("scipy.stats.qmc")


def unscrambled(dims: int, start: int, stop: int) -> np.ndarray:
    return points(direction_vectors(dims), np.zeros(dims, np.uint64), start, stop)


def test_the_vendored_direction_numbers_are_joe_and_kuo_s_as_scipy_ships_them() -> None:
    from tests.core.sobol_data import scipy_table

    poly, vinit = scipy_table()
    table = sobol._table()
    assert len(table) == MAX_DIMS - 1
    for d, (s, a, m) in enumerate(table, start=1):
        assert poly[d] == 2 * a + 2**s + 1 and tuple(vinit[d, :s]) == m, d


@pytest.mark.parametrize("dims", [1, 2, 3, 16, 100, MAX_DIMS])
def test_the_direction_vectors_are_scipy_s(dims: int) -> None:
    engine = qmc.Sobol(dims, scramble=False, bits=64)
    assert np.array_equal(engine._sv, direction_vectors(dims))


@pytest.mark.filterwarnings("ignore:The balance properties")  # scipy's, for odd sizes
@pytest.mark.parametrize(
    ("dims", "start", "stop"), [(2, 0, 4096), (5, 100_000, 101_000), (1, 3, 9)]
)
def test_unscrambled_integer_points_are_scipy_s_from_any_start(
    dims: int, start: int, stop: int
) -> None:
    engine = qmc.Sobol(dims, scramble=False, bits=64)
    reference = engine.random(stop)
    ours = unscrambled(dims, start, stop)
    # scipy scales its integers by 2**-64 into doubles; ours agree to its last bit...
    assert np.array_equal(ours.astype(np.float64) * 2.0**-64, reference[start:stop])
    # ...and its integer state is our last point's.
    assert np.array_equal(engine._quasi, ours[-1])


def test_a_point_deep_in_a_replicate_is_reached_directly() -> None:
    # Point i is the XOR of the vectors over g(i)'s bits, whatever came before: the same
    # as stepping there from an earlier point, at offsets past 2**30 and near 2**64.
    vectors, shift = scrambled(11, 3, 4)
    for start in (2**30 - 5, 2**40 + 123, 2**64 - 40):
        stepped = points(vectors, shift, start, start + 32)
        for k in (0, 7, 31):
            assert np.array_equal(points(vectors, shift, start + k, start + k + 1)[0], stepped[k])


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**128 - 1),
    replicate=st.integers(0, 1023),
    dims=st.integers(1, 12),
    start=st.integers(0, 2**64 - 5000),
    count=st.integers(0, 3000),
)
def test_the_compiled_fill_gives_numpy_s_points(
    seed: int, replicate: int, dims: int, start: int, count: int
) -> None:
    vectors, shift = scrambled(seed, replicate, dims)
    reference = to_unit(points(vectors, shift, start, start + count))
    assert np.array_equal(uniforms(seed, replicate, dims, start, start + count), reference)


@pytest.mark.skipif(sobol._compiled is None, reason=sobol.FALLBACK_REASON or "not compiled")
def test_the_compiled_fill_is_the_one_that_runs() -> None:
    assert sobol.SOBOL_PATH == "compiled"


@pytest.mark.parametrize("replicate", [0, 1, 15])
def test_aligned_blocks_of_a_scrambled_replicate_are_nets(replicate: int) -> None:
    # A (0, m, 2)-net: every elementary box of area 2**-m holds exactly one point, for
    # each aligned block of 2**m points, deep in the sequence too.
    m = 10
    for block in (0, 5, 2**20):
        u = uniforms(2026, replicate, 2, block * 2**m, (block + 1) * 2**m)
        for a in range(m + 1):
            cells = {(int(x * 2**a), int(y * 2 ** (m - a))) for x, y in u}
            assert len(cells) == 2**m, (block, a)


def test_points_are_never_0_or_1_and_scrambles_differ_by_seed_and_replicate() -> None:
    u = uniforms(5, 0, 3, 0, 2**16)
    assert (u > 0).all() and (u < 1).all()
    # The cell's centre: the smallest is half a cell above 0, the largest below 1.
    assert to_unit(np.array([0, 2**64 - 1], dtype=np.uint64)).tolist() == [2**-53, 1 - 2**-53]
    assert not np.array_equal(uniforms(5, 1, 3, 0, 64), uniforms(5, 0, 3, 0, 64))
    assert not np.array_equal(uniforms(6, 0, 3, 0, 64), uniforms(5, 0, 3, 0, 64))
    assert np.array_equal(uniforms(5, 0, 3, 100, 164), uniforms(5, 0, 3, 0, 164)[100:])


def test_a_replicate_s_mean_is_unbiased_across_scrambles() -> None:
    # Each scrambled point is uniform on the cube: the means of f(u) = u1*u2 over many
    # scrambles of a short sequence average to 1/4.
    means = [float(np.prod(uniforms(7, r, 2, 0, 16), axis=1).mean()) for r in range(2000)]
    assert abs(np.mean(means) - 0.25) < 4 * np.std(means) / np.sqrt(len(means))


def test_dimensions_outside_the_table_are_refused() -> None:
    for dims in (0, MAX_DIMS + 1):
        with pytest.raises(ValueError, match="dimensions"):
            direction_vectors(dims)
    with pytest.raises(ValueError, match="within a sequence"):
        points(direction_vectors(1), np.zeros(1, np.uint64), 5, 2**BITS + 1)
