"""The backup policy: only when a copy would win clearly, once the queue drained, bounded."""

from __future__ import annotations

import math

from mcpi.core.stragglers import (
    BACKUP_AFTER,
    BACKUP_SLACK_SECONDS,
    MAX_COPIES,
    WIN_FACTOR,
    WIN_SLACK_SECONDS,
    ChunkSpeed,
    Running,
    choose_backups,
    time_to_end,
    worth_a_backup,
)


def speed_of(*seconds: float, units: int = 1000, host: str = "fast") -> ChunkSpeed:
    speed = ChunkSpeed()
    for s in seconds:
        speed.add(units, s, host)
    return speed


def test_the_typical_rate_is_the_median_so_one_slow_host_does_not_move_it() -> None:
    speed = speed_of(1.0, 1.0, 1.0, 1.0)
    speed.add(1000, 50.0, "slow")
    assert speed.expected_seconds(1000) == 1.0
    assert speed.expected_seconds(3000) == 3.0
    assert speed.expected_seconds(1000, "slow") == 50.0
    assert speed.expected_seconds(1000, "unknown") == 1.0


def test_nothing_is_backed_up_before_a_chunk_is_counted() -> None:
    chunk = Running(0, 1000, 1, since=0.0)
    assert time_to_end(chunk, ChunkSpeed(), now=1e9) is None
    assert choose_backups([chunk], ChunkSpeed(), 1e9, queue_drained=True, in_flight=0, cap=9) == []


def test_a_copy_is_stuck_past_the_multiple_of_its_hosts_time_plus_the_slack() -> None:
    speed = speed_of(2.0)
    limit = BACKUP_AFTER * 2.0 + BACKUP_SLACK_SECONDS
    assert time_to_end(Running(0, 1000, 1, 10.0, "fast"), speed, 10.5) == 1.5
    assert time_to_end(Running(0, 1000, 1, 10.0, "fast"), speed, 10.0 + limit - 0.01) == 0.0
    assert time_to_end(Running(0, 1000, 1, 10.0, "fast"), speed, 10.0 + limit + 0.01) == math.inf
    # Twice the work is expected to take twice as long.
    assert time_to_end(Running(0, 2000, 1, 10.0), speed, 10.0 + limit + 0.01) == 0.0


def test_a_chunk_on_a_slow_host_is_backed_up_while_a_copy_would_still_win() -> None:
    speed = speed_of(1.0, 1.0)
    speed.add(1000, 5.0, "slow")
    on_slow = Running(0, 1000, 1, since=0.0, host="slow")
    # A backup takes 1 s: worth it while the slow copy needs more than 1.5 s + 0.2 s.
    threshold = 5.0 - (WIN_FACTOR * 1.0 + WIN_SLACK_SECONDS)
    assert worth_a_backup(on_slow, speed, now=threshold - 0.01)
    assert not worth_a_backup(on_slow, speed, now=threshold + 0.01)
    # The same chunk on a fast host is left alone until it is stuck.
    on_fast = Running(0, 1000, 1, since=0.0, host="fast")
    assert not worth_a_backup(on_fast, speed, now=2.0)
    assert worth_a_backup(on_fast, speed, now=2.6)


def test_a_chunk_never_seen_running_is_never_backed_up() -> None:
    assert not worth_a_backup(Running(0, 1000, 1, since=None), speed_of(1.0), now=1e9)


def test_backups_wait_for_the_queue_to_drain() -> None:
    chunks = [Running(0, 1000, 1, since=0.0)]
    speed = speed_of(1.0)
    assert choose_backups(chunks, speed, 100.0, queue_drained=False, in_flight=0, cap=4) == []
    assert choose_backups(chunks, speed, 100.0, queue_drained=True, in_flight=0, cap=4) == [0]


def test_the_longest_to_end_go_first_and_the_cap_bounds_copies_in_flight() -> None:
    speed = speed_of(1.0)
    speed.add(1000, 20.0, "slow")
    chunks = [Running(i, 1000, 1, since=float(10 - i)) for i in range(4)]
    chunks.append(Running(9, 1000, 1, since=99.0, host="slow"))  # 19 s to go: not stuck
    assert choose_backups(chunks, speed, 100.0, queue_drained=True, in_flight=0, cap=3) == [
        3,
        2,
        1,
    ]
    assert choose_backups(chunks, speed, 100.0, queue_drained=True, in_flight=0, cap=9) == [
        3,
        2,
        1,
        0,
        9,
    ]
    assert choose_backups(chunks, speed, 100.0, queue_drained=True, in_flight=2, cap=3) == [3]
    assert choose_backups(chunks, speed, 100.0, queue_drained=True, in_flight=3, cap=3) == []


def test_no_chunk_gets_more_than_the_maximum_of_copies() -> None:
    speed = speed_of(1.0)
    chunks = [Running(0, 1000, MAX_COPIES, since=0.0), Running(1, 1000, MAX_COPIES - 1, 0.0)]
    assert choose_backups(chunks, speed, 100.0, queue_drained=True, in_flight=0, cap=9) == [1]
