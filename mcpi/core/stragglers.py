"""Backup copies of straggling chunks: which chunk to send again, and when.

A chunk is a pure function of its id and a tally counts each id once, so a second copy
of a chunk can never change a count: whichever copy comes first counts, a later one is
compared with it. That makes MapReduce's backup tasks safe here (its sort ran 44 %
longer without them), where Celery, Dask and Ray have no such thing.

The policy is pure (the cluster adapter feeds it what it sees):

* **Only when slots would idle.** Backups are sent only once the queue has drained:
  until then every free slot has real work to take, and a copy would delay it.
* **Only when overdue.** A chunk is overdue once its newest copy has run
  :data:`BACKUP_AFTER` times as long as the job's typical slot needs for it (the
  median rate of the chunks counted so far, which a lone slow host barely moves), plus
  :data:`BACKUP_SLACK_SECONDS` for a task's fixed costs and the hub's polling. A
  chunk never seen running has run, at the least, since the queue drained.
* **Bounded.** At most :data:`MAX_COPIES` copies of one chunk, and no more backups in
  flight than the cluster has slots (Hadoop caps copies at 10 % of running tasks; here
  backups only ever fill slots that would otherwise idle, so the slots are the bound).
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

#: A chunk is overdue past this multiple of its expected time (Spark's multiplier is
#: 1.5 to 3; lower is safe here because only idle slots run the copies) ...
BACKUP_AFTER = 2.0
#: ... plus this many seconds (Spark's minTaskRuntime is 0.1 s; a chunk through a
#: broker costs a few ms, and the hub sees results up to 0.1 s late).
BACKUP_SLACK_SECONDS = 0.5
#: The original and at most two backups of any one chunk.
MAX_COPIES = 3
#: The typical rate is the median of the last this-many chunks counted.
RATE_WINDOW = 64


class ChunkSpeed:
    """The job's typical per-slot rate, from the chunks counted so far (units per second)."""

    def __init__(self, window: int = RATE_WINDOW) -> None:
        self._rates: deque[float] = deque(maxlen=window)

    def add(self, units: int, seconds: float) -> None:
        if units > 0 and seconds > 0:
            self._rates.append(units / seconds)

    def expected_seconds(self, units: int) -> float | None:
        """How long a typical slot takes for ``units``; None before any chunk is counted.

        >>> speed = ChunkSpeed()
        >>> for seconds in (1.0, 1.1, 0.9, 5.0):  # one slow host among fast ones
        ...     speed.add(100, seconds)
        >>> round(speed.expected_seconds(100), 2)
        1.05
        """
        if not self._rates:
            return None
        return units / statistics.median(self._rates)


@dataclass(frozen=True, slots=True)
class Running:
    """A chunk not yet counted: its size, its copies, and since when its newest copy runs.

    ``since`` is None when the hub cannot tell (its newest copy has not been seen
    running, and the queue had not drained when last looked at).
    """

    index: int
    units: int
    copies: int
    since: float | None


def overdue(chunk: Running, speed: ChunkSpeed, now: float) -> bool:
    """Whether ``chunk``'s newest copy has run far longer than the typical slot needs.

    >>> speed = ChunkSpeed()
    >>> speed.add(100, 1.0)
    >>> overdue(Running(7, 100, 1, since=10.0), speed, now=12.0)
    False
    >>> overdue(Running(7, 100, 1, since=10.0), speed, now=12.6)
    True
    """
    expected = speed.expected_seconds(chunk.units)
    if expected is None or chunk.since is None:
        return False
    return now - chunk.since > BACKUP_AFTER * expected + BACKUP_SLACK_SECONDS


def choose_backups(
    running: Iterable[Running],
    speed: ChunkSpeed,
    now: float,
    *,
    queue_drained: bool,
    in_flight: int,
    cap: int,
) -> list[int]:
    """The chunks to send again now, the longest overdue first (see the module docstring).

    ``in_flight``: backups sent whose chunk is not counted yet; ``cap``: their bound.

    >>> speed = ChunkSpeed()
    >>> speed.add(100, 1.0)
    >>> chunks = [Running(1, 100, 1, 0.0), Running(2, 100, 1, 5.0), Running(3, 100, 3, 0.0)]
    >>> choose_backups(chunks, speed, 6.0, queue_drained=True, in_flight=0, cap=4)
    [1]
    >>> choose_backups(chunks, speed, 6.0, queue_drained=False, in_flight=0, cap=4)
    []
    """
    if not queue_drained or in_flight >= cap:
        return []
    late = [c for c in running if c.copies < MAX_COPIES and overdue(c, speed, now)]
    late.sort(key=lambda c: (c.since or 0.0, c.index))
    return [c.index for c in late[: cap - in_flight]]
