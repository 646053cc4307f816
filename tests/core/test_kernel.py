"""The kernel against a slow reference, its reproducibility, memory and RNG hygiene."""

from __future__ import annotations

import itertools
import multiprocessing
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcpi.core.kernel import MAX_SEED, count_hits, count_hits_reference, draws


def reference_count(seed: int, start: int, stop: int) -> int:
    """One dart at a time, in plain Python, exactly as the kernel's docstring defines it."""
    generator = np.random.PCG64(seed)
    generator.advance(start)
    hits = 0
    for _ in range(stop - start):
        r = int(generator.random_raw())
        x, y = r & 0xFFFFFFFF, r >> 32
        x, y = x - (1 << 32) * (x >> 31), y - (1 << 32) * (y >> 31)  # two's complement
        hits += float(x) * float(x) + float(y) * float(y) < 2.0**62
    return hits


def exact_integer_count(seed: int, start: int, stop: int) -> int:
    """The same darts with exact integer arithmetic instead of doubles."""
    v = draws(seed, start, stop).view(np.int32).astype(np.int64)
    return int(np.count_nonzero(v[0::2] ** 2 + v[1::2] ** 2 < 2**62))


@pytest.mark.parametrize(
    ("seed", "start", "stop"),
    [
        (0, 0, 5000),
        (1, 0, 1),
        (42, 123, 4567),
        (2**64 + 7, 10**12, 10**12 + 3000),
        (MAX_SEED, 5, 2000),
    ],
)
def test_kernel_matches_one_dart_at_a_time_reference(seed: int, start: int, stop: int) -> None:
    expected = reference_count(seed, start, stop)
    assert count_hits(seed, start, stop) == expected
    assert count_hits_reference(seed, start, stop) == expected
    assert count_hits_reference(seed, start, stop, block=7) == expected
    assert exact_integer_count(seed, start, stop) == expected


def test_hit_fraction_is_pi_over_four() -> None:
    n = 4_000_000
    p = count_hits(7, 0, n) / n
    assert abs(4 * p - np.pi) < 5 * 4 * np.sqrt(p * (1 - p) / n)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, MAX_SEED),
    cuts=st.lists(st.integers(0, 200_000), max_size=8),
)
def test_any_split_gives_the_serial_count(seed: int, cuts: list[int]) -> None:
    bounds = sorted({0, 200_000, *cuts})
    parts = sum(count_hits(seed, a, b) for a, b in itertools.pairwise(bounds))
    assert parts == count_hits(seed, 0, 200_000)


def test_chunks_are_disjoint_pieces_of_one_stream() -> None:
    whole = draws(99, 0, 3000)
    assert np.array_equal(np.concatenate([draws(99, 0, 1000), draws(99, 1000, 3000)]), whole)
    assert len(np.unique(whole)) == len(whole)


def test_kernel_leaves_the_global_generator_alone() -> None:
    np.random.seed(5)
    before = np.random.get_state()[1].copy()
    count_hits(3, 0, 100_000)
    assert np.array_equal(np.random.get_state()[1], before)


def _count_in_child(args: tuple[int, int, int]) -> int:
    return count_hits(*args)


def test_forked_pool_children_throw_the_darts_of_their_own_chunk() -> None:
    # The seed blog's bug: prefork children inherit the global generator's state, so a
    # kernel drawing from it makes every child start from the same darts. Here each
    # child inherits a seeded global state, and each chunk's count must still be the
    # one this process computes for that chunk. (A kernel on the global state fails:
    # the two children's first chunks would both be counted from the inherited state.)
    np.random.seed(0)
    chunks = [(11, i * 50_000, (i + 1) * 50_000) for i in range(4)]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        counts = pool.map(_count_in_child, chunks, chunksize=1)
    assert counts == [count_hits(*chunk) for chunk in chunks]
    assert sum(counts) == count_hits(11, 0, 200_000)


@pytest.mark.parametrize("kernel", [count_hits, count_hits_reference])
def test_memory_is_bounded_whatever_the_chunk_length(kernel) -> None:  # type: ignore[no-untyped-def]
    tracemalloc.start()
    try:
        kernel(1, 0, 5_000_000)  # 40 MB of draws if taken in one array
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 2**20


@pytest.mark.parametrize("kernel", [count_hits, count_hits_reference])
def test_empty_and_invalid_ranges(kernel) -> None:  # type: ignore[no-untyped-def]
    assert kernel(1, 10, 10) == 0
    with pytest.raises(ValueError):
        kernel(1, 10, 5)
    with pytest.raises(ValueError):
        kernel(-1, 0, 5)
    with pytest.raises(ValueError):
        kernel(MAX_SEED + 1, 0, 5)
    with pytest.raises(ValueError):
        kernel(True, 0, 5)


def test_exact_disc_count_of_the_resolution_benchmark() -> None:
    # benchmarks/resolution.py computes the kernel's exact bias; check its counting.
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[2] / "benchmarks" / "resolution.py"
    spec = importlib.util.spec_from_file_location("resolution", path)
    assert spec is not None and spec.loader is not None
    resolution = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(resolution)
    for radius in (1, 2, 5, 64, 100):
        side = np.arange(-radius, radius)
        brute = int(np.count_nonzero(side[:, None] ** 2 + side[None, :] ** 2 < radius**2))
        assert resolution.disc_points(radius) == brute
