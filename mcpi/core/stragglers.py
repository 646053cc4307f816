"""Backup copies of straggling chunks: which chunk to send again, and when.

A chunk is a pure function of its id and a tally counts each id once, so a second copy
of a chunk can never change a count: whichever copy comes first counts, a later one is
compared with it. That makes MapReduce's backup tasks safe here (its sort ran 44 %
longer without them), where Celery, Dask and Ray have no such thing.

The policy is pure (the cluster adapter feeds it what it sees):

* **Only when slots would idle.** Backups are sent only once the queue has drained:
  until then every free slot has real work to take, and a copy would delay it.
* **Only when a copy would finish first** (the LATE scheduler's rule: back up the
  task with the longest approximate time to end). A chunk's newest copy is expected
  to take as long as its host's slots have needed for such work in this job (the
  median rate of that host's chunks counted so far; the whole job's median while the
  host has none). A backup on an idle slot is expected to take the job's typical time
  (the median of all chunks counted, which a lone slow host barely moves). A chunk is
  backed up when the time its copy still needs exceeds :data:`WIN_FACTOR` times the
  backup's, plus :data:`WIN_SLACK_SECONDS`: a desktop slowed to a fifth of its speed
  gets a copy while it has most of its chunk to go.
* **Stuck copies.** A copy that has run :data:`BACKUP_AFTER` times as long as its
  host should need, plus :data:`BACKUP_SLACK_SECONDS`, is taken to be stuck (a frozen
  process, a hung model): its time to end is unknown, so it is backed up. A chunk never
  seen running has run, at the least, since the queue drained.
* **Bounded.** At most :data:`MAX_COPIES` copies of one chunk, and no more backups in
  flight than the cluster has slots (Hadoop caps copies at 10 % of running tasks; here
  backups only ever fill slots that would otherwise idle, so the slots are the bound).
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

#: A copy is stuck past this multiple of the time its host should need (Spark's
#: speculation multiplier is 1.5 to 3) ...
BACKUP_AFTER = 2.0
#: ... plus this many seconds (Spark's minTaskRuntime is 0.1 s; a chunk through a
#: broker costs a few ms, and the hub sees results up to 0.1 s late).
BACKUP_SLACK_SECONDS = 0.5
#: A running copy is backed up when it still needs more than this multiple of the time
#: a backup would take ...
WIN_FACTOR = 1.5
#: ... plus this many seconds: a backup must win clearly to be worth a slot.
WIN_SLACK_SECONDS = 0.2
#: The original and at most two backups of any one chunk.
MAX_COPIES = 3
#: Rates are the medians of the last this-many chunks counted (per host, and overall).
RATE_WINDOW = 64


class ChunkSpeed:
    """Per-slot rates (units per second) of the chunks counted so far: overall, by host."""

    def __init__(self, window: int = RATE_WINDOW) -> None:
        self.window = window
        self._rates: deque[float] = deque(maxlen=window)
        self._by_host: dict[str, deque[float]] = {}

    def add(self, units: int, seconds: float, host: str = "") -> None:
        if units > 0 and seconds > 0:
            rate = units / seconds
            self._rates.append(rate)
            self._by_host.setdefault(host, deque(maxlen=self.window)).append(rate)

    def expected_seconds(self, units: int, host: str | None = None) -> float | None:
        """How long a slot takes for ``units``: one of ``host``'s, if it has counted a
        chunk, else a typical one; None before any chunk is counted.

        >>> speed = ChunkSpeed()
        >>> for seconds in (1.0, 1.1, 0.9):
        ...     speed.add(100, seconds, "fast")
        >>> speed.add(100, 5.0, "slow")  # one slow host among fast ones
        >>> round(speed.expected_seconds(100), 2), speed.expected_seconds(100, "slow")
        (1.05, 5.0)
        """
        rates = self._by_host.get(host or "") if host is not None else None
        if not rates:
            rates = self._rates
        if not rates:
            return None
        return units / statistics.median(rates)


@dataclass(frozen=True, slots=True)
class Running:
    """A chunk not yet counted: its size, its copies, since when (hub clock) and where
    its newest copy runs.

    ``since`` is None when the hub cannot tell (its newest copy has not been seen
    running, and the queue had not drained when last looked at); ``host`` is None when
    it is not known where.
    """

    index: int
    units: int
    copies: int
    since: float | None
    host: str | None = None


def time_to_end(chunk: Running, speed: ChunkSpeed, now: float) -> float | None:
    """Seconds ``chunk``'s newest copy still needs (``inf``: stuck); None if unknown.

    >>> speed = ChunkSpeed()
    >>> speed.add(100, 1.0, "a")
    >>> speed.add(100, 4.0, "slow")
    >>> time_to_end(Running(7, 100, 1, since=10.0, host="slow"), speed, now=11.0)
    3.0
    >>> time_to_end(Running(7, 100, 1, since=10.0, host="a"), speed, now=13.0)
    inf
    """
    own = speed.expected_seconds(chunk.units, chunk.host)
    if own is None or chunk.since is None:
        return None
    elapsed = now - chunk.since
    if elapsed > BACKUP_AFTER * own + BACKUP_SLACK_SECONDS:
        return math.inf
    return max(own - elapsed, 0.0)


def worth_a_backup(chunk: Running, speed: ChunkSpeed, now: float) -> bool:
    """Whether a copy on a typical idle slot would finish clearly before ``chunk``'s.

    >>> speed = ChunkSpeed()
    >>> speed.add(100, 1.0, "a")
    >>> speed.add(100, 5.0, "slow")
    >>> worth_a_backup(Running(7, 100, 1, since=10.0, host="slow"), speed, now=10.5)
    True
    >>> worth_a_backup(Running(7, 100, 1, since=10.0, host="slow"), speed, now=13.5)
    False
    >>> worth_a_backup(Running(7, 100, 1, since=10.0, host="a"), speed, now=10.5)
    False
    """
    remaining = time_to_end(chunk, speed, now)
    backup = speed.expected_seconds(chunk.units)
    if remaining is None or backup is None:
        return False
    return remaining > WIN_FACTOR * backup + WIN_SLACK_SECONDS


def choose_backups(
    running: Iterable[Running],
    speed: ChunkSpeed,
    now: float,
    *,
    queue_drained: bool,
    in_flight: int,
    cap: int,
) -> list[int]:
    """The chunks to send again now, the longest to end first (see the module docstring).

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
    late = [c for c in running if c.copies < MAX_COPIES and worth_a_backup(c, speed, now)]
    late.sort(key=lambda c: (-(time_to_end(c, speed, now) or 0.0), c.since or 0.0, c.index))
    return [c.index for c in late[: cap - in_flight]]
