"""The backup policy: only overdue chunks, only once the queue drained, and bounded."""

from __future__ import annotations

from mcpi.core.stragglers import (
    BACKUP_AFTER,
    BACKUP_SLACK_SECONDS,
    MAX_COPIES,
    ChunkSpeed,
    Running,
    choose_backups,
    overdue,
)


def speed_of(*seconds: float, units: int = 1000) -> ChunkSpeed:
    speed = ChunkSpeed()
    for s in seconds:
        speed.add(units, s)
    return speed


def test_the_typical_rate_is_the_median_so_one_slow_host_does_not_move_it() -> None:
    speed = speed_of(1.0, 1.0, 1.0, 1.0, 50.0)
    assert speed.expected_seconds(1000) == 1.0
    assert speed.expected_seconds(3000) == 3.0


def test_nothing_is_overdue_before_a_chunk_is_counted() -> None:
    chunk = Running(0, 1000, 1, since=0.0)
    assert not overdue(chunk, ChunkSpeed(), now=1e9)
    assert choose_backups([chunk], ChunkSpeed(), 1e9, queue_drained=True, in_flight=0, cap=9) == []


def test_a_chunk_is_overdue_past_the_multiple_of_its_expected_time_plus_the_slack() -> None:
    speed = speed_of(2.0)
    limit = BACKUP_AFTER * 2.0 + BACKUP_SLACK_SECONDS
    assert not overdue(Running(0, 1000, 1, since=10.0), speed, now=10.0 + limit - 0.01)
    assert overdue(Running(0, 1000, 1, since=10.0), speed, now=10.0 + limit + 0.01)
    # Twice the work is expected to take twice as long.
    assert not overdue(Running(0, 2000, 1, since=10.0), speed, now=10.0 + limit + 0.01)


def test_a_chunk_never_seen_running_is_never_overdue() -> None:
    assert not overdue(Running(0, 1000, 1, since=None), speed_of(1.0), now=1e9)


def test_backups_wait_for_the_queue_to_drain() -> None:
    chunks = [Running(0, 1000, 1, since=0.0)]
    speed = speed_of(1.0)
    assert choose_backups(chunks, speed, 100.0, queue_drained=False, in_flight=0, cap=4) == []
    assert choose_backups(chunks, speed, 100.0, queue_drained=True, in_flight=0, cap=4) == [0]


def test_the_longest_overdue_go_first_and_the_cap_bounds_copies_in_flight() -> None:
    chunks = [Running(i, 1000, 1, since=float(10 - i)) for i in range(5)]
    speed = speed_of(1.0)
    assert choose_backups(chunks, speed, 100.0, queue_drained=True, in_flight=0, cap=3) == [4, 3, 2]
    assert choose_backups(chunks, speed, 100.0, queue_drained=True, in_flight=2, cap=3) == [4]
    assert choose_backups(chunks, speed, 100.0, queue_drained=True, in_flight=3, cap=3) == []


def test_no_chunk_gets_more_than_the_maximum_of_copies() -> None:
    speed = speed_of(1.0)
    chunks = [Running(0, 1000, MAX_COPIES, since=0.0), Running(1, 1000, MAX_COPIES - 1, 0.0)]
    assert choose_backups(chunks, speed, 100.0, queue_drained=True, in_flight=0, cap=9) == [1]
