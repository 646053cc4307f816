"""Plans cover [0, N) exactly, waves partition them, and the count ignores the plan."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcpi.core.kernel import count_hits
from mcpi.core.plan import MAX_CHUNK_DARTS, MAX_DARTS, Plan


@settings(deadline=None)
@given(darts=st.integers(1, 10**5), chunk_size=st.integers(1, 10**5))
def test_chunks_tile_the_darts(darts: int, chunk_size: int) -> None:
    plan = Plan(darts, chunk_size)
    chunks = list(plan.chunks())
    assert len(chunks) == plan.chunk_count
    assert chunks[0].start == 0 and chunks[-1].stop == darts
    assert all(a.stop == b.start for a, b in itertools.pairwise(chunks))
    assert all(c.index == i and 0 < c.darts <= chunk_size for i, c in enumerate(chunks))


@given(chunks=st.integers(1, 5000), per_wave=st.integers(1, 700))
def test_waves_partition_the_chunks(chunks: int, per_wave: int) -> None:
    plan = Plan(chunks, 1)
    waves = list(plan.waves(per_wave))
    assert [i for w in waves for i in w] == list(range(chunks))
    assert all(len(w) <= per_wave for w in waves)
    assert all(plan.wave_of(i, per_wave) == w for w in waves for i in w)


@pytest.mark.parametrize("chunk_size", [1, 999, 10_000, 65_536, 400_000])
def test_total_hits_do_not_depend_on_the_plan(chunk_size: int) -> None:
    plan = Plan(400_000, chunk_size)
    assert sum(count_hits(77, c.start, c.stop) for c in plan.chunks()) == count_hits(77, 0, 400_000)


def test_a_plan_of_the_largest_job_is_lazy() -> None:
    plan = Plan(MAX_DARTS, MAX_CHUNK_DARTS)
    assert plan.chunk(plan.chunk_count - 1).stop == MAX_DARTS
    assert next(iter(plan.waves())).start == 0


@pytest.mark.parametrize(
    ("darts", "chunk_size"),
    [(0, 1), (-1, 1), (MAX_DARTS + 1, 10**12), (10, 0), (10, MAX_CHUNK_DARTS + 1), (10**9, 1)],
)
def test_invalid_plans_are_refused(darts: int, chunk_size: int) -> None:
    with pytest.raises(ValueError):
        Plan(darts, chunk_size)
