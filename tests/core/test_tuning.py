"""Automatic chunk sizing: bounds that hold for any capacity, and the pressures at work."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcpi.core.plan import MAX_CHUNK_DARTS, MAX_CHUNKS, MAX_DARTS, MAX_WAVE_CHUNKS, Plan
from mcpi.core.tuning import (
    BALANCE_WORTH,
    CHUNKS_PER_SLOT,
    MAX_CHUNK_SECONDS,
    MAX_OVERHEAD,
    Capacity,
    HostRate,
    choose_chunk_size,
    wave_size,
)

hosts = st.lists(
    st.builds(
        HostRate,
        host=st.text("abcdefgh", min_size=1, max_size=4),
        slots=st.integers(1, 256),
        rate=st.floats(1e5, 1e10),
    ),
    min_size=1,
    max_size=6,
    unique_by=lambda h: h.host,
)
capacities = st.builds(Capacity.of, hosts, st.floats(0, 1.0))


@settings(deadline=None, max_examples=400)
@given(darts=st.integers(1, MAX_DARTS), capacity=capacities)
def test_the_choice_is_always_a_valid_even_plan(darts: int, capacity: Capacity) -> None:
    choice = choose_chunk_size(darts, capacity)
    plan = Plan(darts, choice.chunk_size)  # raises if out of bounds
    assert plan.chunk_count == choice.chunks <= MAX_CHUNKS
    assert 1 <= choice.chunk_size <= min(darts, MAX_CHUNK_DARTS)
    assert choice.waves == math.ceil(choice.chunks / wave_size(capacity.slots))
    assert wave_size(capacity.slots) <= MAX_WAVE_CHUNKS
    # Even: the last chunk is shorter than the others by less than one dart per chunk.
    last = plan.chunk(plan.chunk_count - 1)
    assert choice.chunk_size - last.darts < choice.chunks
    assert choice.expected_seconds >= darts / capacity.rate * (1 - 1e-9)


@settings(deadline=None, max_examples=400)
@given(darts=st.integers(1, MAX_DARTS), capacity=capacities)
def test_each_pressure_holds_unless_a_stronger_one_says_why_not(
    darts: int, capacity: Capacity
) -> None:
    choice = choose_chunk_size(darts, capacity)
    if choice.bound_by in ("balance", "length", "chunk limit"):
        # The overhead floor was met, and no chunk is longer than the length ceiling.
        assert choice.overhead_fraction <= MAX_OVERHEAD * 1.01
        assert choice.chunk_size / capacity.slowest <= MAX_CHUNK_SECONDS * 1.01
    if choice.bound_by == "balance":
        asked = capacity.slots * CHUNKS_PER_SLOT * capacity.slowest / capacity.fastest
        assert choice.chunks >= asked * (1 - 1e-9)  # (the float division's own error)


def test_a_big_job_gives_every_slot_several_chunks() -> None:
    capacity = Capacity.of([HostRate("a", 8, 2e8), HostRate("b", 8, 2e8)], 0.005)
    choice = choose_chunk_size(10**11, capacity)
    assert choice.bound_by == "balance"
    assert choice.chunks == 16 * CHUNKS_PER_SLOT
    assert choice.overhead_fraction < 0.001


@pytest.mark.parametrize("darts", [24_415, 10**10 + 7, 8 * 3051 + 1, 2**33 - 1])
def test_a_job_not_divisible_into_the_chunks_still_gets_whole_rounds(darts: int) -> None:
    # The balance ceiling asks for 4 chunks on each of 2 equal slots; a count of darts
    # (or a model's blocks) not divisible by 8 must not make it 9 chunks, 5 rounds on a
    # slot for a job that 4 rounds do.
    capacity = Capacity.of([HostRate("a", 2, 1e9)], 0.0)
    choice = choose_chunk_size(darts, capacity)
    assert choice.bound_by == "balance"
    assert choice.chunks == 2 * CHUNKS_PER_SLOT


def test_a_slow_host_shrinks_the_chunks_so_it_cannot_hold_up_the_end() -> None:
    even = Capacity.of([HostRate("a", 4, 2e8), HostRate("b", 4, 2e8)], 0.005)
    one_slow = Capacity.of([HostRate("a", 4, 2e8), HostRate("b", 4, 2e7)], 0.005)
    slow_size = choose_chunk_size(10**12, one_slow).chunk_size
    assert slow_size < choose_chunk_size(10**12, even).chunk_size
    # The slow host's last chunk is at most 1/CHUNKS_PER_SLOT of the job's ideal time.
    choice = choose_chunk_size(10**12, one_slow)
    assert choice.chunk_size / 2e7 <= 10**12 / one_slow.rate / CHUNKS_PER_SLOT * 1.001


def test_a_small_job_gets_fewer_chunks_worth_their_overhead() -> None:
    capacity = Capacity.of([HostRate("a", 64, 2e8)], 0.005)
    choice = choose_chunk_size(10**10, capacity)
    assert choice.bound_by == "overhead"
    assert 64 < choice.chunks < 64 * CHUNKS_PER_SLOT
    assert choice.chunks % 64 == 0  # whole rounds of slots
    assert choice.overhead_fraction <= MAX_OVERHEAD


def test_a_smaller_job_still_gives_every_slot_two_chunks_worth_their_overhead() -> None:
    capacity = Capacity.of([HostRate("a", 64, 2e8)], 0.005)
    choice = choose_chunk_size(10**9, capacity)
    assert (choice.chunks, choice.bound_by) == (128, "overhead")
    assert choice.chunk_seconds >= BALANCE_WORTH * capacity.task_overhead
    # Smaller still: one chunk per slot while it outlasts its overhead.
    choice = choose_chunk_size(10**8, capacity)
    assert (choice.chunks, choice.bound_by) == (64, "overhead")
    assert choice.chunk_seconds > capacity.task_overhead
    # With an overhead estimate far too high, the slots are still all used.
    assert choose_chunk_size(10**9, Capacity.of([HostRate("a", 2, 2e8)], 2.0)).chunks == 2


def test_a_tiny_job_is_one_chunk() -> None:
    capacity = Capacity.of([HostRate("a", 2, 2e8)], 0.005)
    choice = choose_chunk_size(1000, capacity)
    assert (choice.chunks, choice.chunk_size, choice.bound_by) == (1, 1000, "whole job")


def test_the_largest_job_is_cut_into_bounded_waves_of_bounded_chunks() -> None:
    capacity = Capacity.of([HostRate("a", 2, 2e8)], 0.005)
    choice = choose_chunk_size(MAX_DARTS, capacity)
    assert choice.bound_by == "length"
    assert choice.chunk_size / 2e8 <= MAX_CHUNK_SECONDS
    assert choice.waves > 1 and choice.chunks <= MAX_CHUNKS


def test_a_cluster_with_expensive_tasks_gets_longer_chunks() -> None:
    cheap = Capacity.of([HostRate("a", 4, 2e8)], 0.001)
    dear = Capacity.of([HostRate("a", 4, 2e8)], 0.1)
    assert choose_chunk_size(10**10, dear).chunk_size > choose_chunk_size(10**10, cheap).chunk_size


@pytest.mark.parametrize(
    "make",
    [
        lambda: HostRate("a", 0, 1e8),
        lambda: HostRate("a", 1, 0.0),
        lambda: HostRate("a", 1, math.nan),
        lambda: Capacity.of([], 0.001),
        lambda: Capacity.of([HostRate("a", 1, 1e8)], -1.0),
    ],
)
def test_invalid_capacities_are_refused(make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        make()


def test_waves_are_counted_as_the_cluster_cuts_them_for_large_results() -> None:
    """Waves hold at most WAVE_MESSAGE_BYTES of results: a model with large results
    (a histogram's bins) is published in more, smaller waves than the chunk limit allows."""
    many = Capacity.of([HostRate("a", 4_000, 1e8)], task_overhead=0.005)
    plain = choose_chunk_size(10**13, many)
    large = choose_chunk_size(10**13, many, result_bytes=64 * 1024)
    assert plain.chunks == large.chunks
    assert plain.waves == math.ceil(plain.chunks / wave_size(many.slots))
    assert large.waves == math.ceil(large.chunks / wave_size(many.slots, result_bytes=64 * 1024))
    assert large.waves > plain.waves
