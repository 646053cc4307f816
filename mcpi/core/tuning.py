"""Automatic chunk sizing: from measured worker rates to the chunk size of a job.

Pure: the inputs are measurements (each host's slots and per-slot kernel rate, and the
per-task overhead of the transport), the output is a chunk size with the reasons for it.
Three pressures decide it:

* **Overhead.** Every chunk pays a fixed cost besides its darts (publish, deliver,
  store and collect the result: a few ms through a broker). A chunk must run at least
  ``overhead / max_overhead`` seconds on the *fastest* slot, so that this cost is at
  most ``max_overhead`` (2 %) of any slot's time.
* **Balance.** The job ends when the last chunk does. With at least
  ``chunks_per_slot`` chunks per slot of *equal work*, a slow or lost slot delays the
  end by one chunk of its own speed, a fraction ``1 / chunks_per_slot`` of the job;
  slots pulling work as they free (prefetch 1) absorb speed differences.
* **Length.** A chunk lost with its host is recomputed from scratch, and RabbitMQ
  closes a consumer whose unacknowledged message is older than its consumer timeout
  (acks are late), so no chunk may run longer than ``max_chunk_seconds`` on the
  *slowest* slot.

Overhead sets a floor, balance and length set ceilings; when they cross (a job too
small to give every slot several chunks worth their overhead) the floor wins: fewer,
worthwhile chunks beat many chunks that mostly wait on the broker -- but never fewer
than one chunk per slot while a chunk's work still outlasts its overhead, because an
idle slot costs more than a few percent of overhead, and never fewer than two per slot
while a chunk's work still outlasts ``BALANCE_WORTH`` times its overhead: with one chunk
per slot nothing can even out a slot that is slowed (a busy core on a small machine, a
desktop's owner), and the whole job waits for it (measured: a 2-chunk job on 2 slots
took 1.0 or 1.7 times its ideal, at random; 4 chunks took 1.1 to 1.2). The count of chunks
is then bounded by :data:`mcpi.core.plan.MAX_CHUNKS`, and a chord holds :func:`wave_size`
of them, never more than the ``wave_chunks`` setting (the hub submits successive waves).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

from mcpi.core.plan import MAX_CHUNK_DARTS, MAX_CHUNKS, MAX_WAVE_CHUNKS, check_darts

#: Default bounds (see the module docstring).
MAX_OVERHEAD = 0.02
CHUNKS_PER_SLOT = 4
#: A small job still gets two chunks per slot while each chunk's work is at least this
#: many times its overhead (so at most ~17 % of a slot's time goes to overhead).
BALANCE_WORTH = 5.0
#: A lost chunk costs at most a minute of one slot; far inside RabbitMQ's consumer
#: timeout (30 min, as the deployment sets it: rabbitmq_consumer_timeout_ms).
MAX_CHUNK_SECONDS = 60.0
#: A wave holds this many chunks per slot (at least ``MIN_WAVE_CHUNKS``), up to the
#: configured maximum: with the next wave always queued behind it, a wave only has to
#: outlast the publishing of the next one, and smaller waves publish quickly, keep
#: less in flight, and leave less to withdraw if the job is abandoned.
WAVE_CHUNKS_PER_SLOT = 16
MIN_WAVE_CHUNKS = 64
#: A wave's chord callback is one message carrying every chunk result of the wave
#: (Celery's Redis backend gathers them for it): a wave holds at most this many bytes
#: of results, so that no message exceeds 1 MiB, with room for the rest of it (the job,
#: the headers). A large message holds up the channel it travels on, the worker that
#: gathers it and the one that decodes it; the broker's own limit is far higher.
WAVE_MESSAGE_BYTES = 896 * 1024
#: Chunks of waves in flight (queued or computing) per slot, at least: a wave cut short
#: by its results' size still leaves every slot work queued behind its chunk.
IN_FLIGHT_CHUNKS_PER_SLOT = 4


@dataclass(frozen=True, slots=True)
class HostRate:
    """One host's worker slots and the kernel rate of one of them (darts/s)."""

    host: str
    slots: int
    rate: float
    source: str = "calibrated"  # or "learnt" (from earlier jobs' results)

    def __post_init__(self) -> None:
        if self.slots < 1 or not (self.rate > 0 and math.isfinite(self.rate)):
            raise ValueError(f"invalid capacity for {self.host}: {self.slots} x {self.rate}")


@dataclass(frozen=True, slots=True)
class Capacity:
    """What a cluster (or the local pool) can do: its hosts and the cost of one task."""

    hosts: tuple[HostRate, ...]
    task_overhead: float  # seconds one slot spends per chunk on top of counting it

    def __post_init__(self) -> None:
        if not self.hosts:
            raise ValueError("a capacity needs at least one host")
        if not (self.task_overhead >= 0 and math.isfinite(self.task_overhead)):
            raise ValueError(f"invalid task overhead {self.task_overhead}")

    @classmethod
    def of(cls, hosts: Iterable[HostRate], task_overhead: float) -> Capacity:
        return cls(tuple(sorted(hosts, key=lambda h: h.host)), task_overhead)

    @property
    def slots(self) -> int:
        return sum(h.slots for h in self.hosts)

    def per_block(self, block: int) -> Capacity:
        """The same capacity counted in blocks of ``block`` samples (or darts) per second."""
        if block == 1:
            return self
        hosts = (HostRate(h.host, h.slots, h.rate / block, h.source) for h in self.hosts)
        return Capacity(tuple(hosts), self.task_overhead)

    def shared(self, jobs: int) -> Capacity:
        """Each one's share of this capacity when ``jobs`` jobs run on it at once.

        Every host keeps its rate and gives each job its slots divided by ``jobs``
        (at least one): a sweep's small jobs are then chunked as the small parts of
        one big job they are, not each as if it had the whole cluster to fill.

        >>> Capacity.of([HostRate("a", 8, 1e8), HostRate("b", 2, 1e8)], 0.0).shared(4).slots
        3
        """
        if jobs <= 1:
            return self
        hosts = (HostRate(h.host, -(-h.slots // jobs), h.rate, h.source) for h in self.hosts)
        return Capacity(tuple(hosts), self.task_overhead)

    @property
    def rate(self) -> float:
        """Darts/s of every slot together."""
        return sum(h.slots * h.rate for h in self.hosts)

    @property
    def fastest(self) -> float:
        return max(h.rate for h in self.hosts)

    @property
    def slowest(self) -> float:
        return min(h.rate for h in self.hosts)


@dataclass(frozen=True, slots=True)
class ChunkChoice:
    """A chunk size for a job and what to expect from it."""

    darts: int
    chunk_size: int
    chunks: int
    waves: int
    bound_by: str  # which pressure decided: "balance", "overhead", "length", "whole job", ...
    chunk_seconds: float  # one chunk on the fastest slot
    overhead_fraction: float  # of a slot's time, on the fastest slot
    expected_seconds: float  # the job on the whole capacity, overhead included

    def in_samples(self, block: int) -> ChunkChoice:
        """A choice made in blocks of ``block`` samples, stated in samples."""
        return replace(self, darts=self.darts * block, chunk_size=self.chunk_size * block)


def choose_chunk_size(
    darts: int,
    capacity: Capacity,
    *,
    max_overhead: float = MAX_OVERHEAD,
    chunks_per_slot: int = CHUNKS_PER_SLOT,
    max_chunk_seconds: float = MAX_CHUNK_SECONDS,
    wave_chunks: int = MAX_WAVE_CHUNKS,
    result_bytes: int = 0,
) -> ChunkChoice:
    """The chunk size for ``darts`` on ``capacity`` (see the module docstring); its
    waves are counted as the cluster cuts them, for results of ``result_bytes`` each
    (0: unknown, waves of ``wave_chunks`` at most).

    Two slots of 2e8 darts/s with 5 ms per task: a big job gets 4 chunks per slot,
    a small one fewer chunks, but two per slot while each is worth 5 x its overhead.

    >>> two = Capacity.of([HostRate("a", 2, 2e8)], task_overhead=0.005)
    >>> c = choose_chunk_size(10**10, two)
    >>> c.chunks, c.chunk_size, c.bound_by
    (8, 1250000000, 'balance')
    >>> c = choose_chunk_size(10**8, two)
    >>> c.chunks, c.bound_by
    (4, 'overhead')
    >>> choose_chunk_size(10**7, two).chunks
    2
    """
    check_darts(darts)
    if not 0 < max_overhead < 1 or chunks_per_slot < 1 or max_chunk_seconds <= 0:
        raise ValueError("invalid tuning bounds")
    fastest, slowest, total = capacity.fastest, capacity.slowest, capacity.rate

    # Floor: the task overhead is at most max_overhead of a chunk's time on the fastest slot.
    floor = capacity.task_overhead * fastest * (1 - max_overhead) / max_overhead
    # Ceilings: every slot gets chunks_per_slot chunks' worth of the slowest slot's time;
    # no chunk runs longer than max_chunk_seconds on the slowest slot.
    balance = darts * slowest / (total * chunks_per_slot)
    length = slowest * max_chunk_seconds
    ceilings = {"balance": balance, "length": length, "chunk limit": float(MAX_CHUNK_DARTS)}
    bound_by = min(ceilings, key=lambda k: ceilings[k])
    size = ceilings[bound_by]
    if floor > size:
        size, bound_by = floor, "overhead"
    lower_limit = math.ceil(darts / MAX_CHUNKS)
    if size < lower_limit:
        size, bound_by = lower_limit, "chunk count limit"
    exact_size = size
    size = max(1, min(int(size), MAX_CHUNK_DARTS, darts))

    if bound_by == "overhead":
        # Every chunk at least the floor: round the count down, to whole rounds of
        # slots where there are enough chunks (3 chunks on 2 slots take 2 rounds) ...
        chunks = max(1, darts // size)
        if chunks >= capacity.slots:
            chunks -= chunks % capacity.slots
        # ... but an idle slot wastes more than overhead does: up to one chunk per
        # slot, as long as a chunk's work outlasts its overhead, and two per slot, so
        # that the slots can even each other out, while it outlasts it several times.
        worthwhile = (
            int(darts / (capacity.task_overhead * fastest)) if capacity.task_overhead else darts
        )
        balanced = int(worthwhile / BALANCE_WORTH)
        chunks = max(chunks, min(capacity.slots, worthwhile), min(2 * capacity.slots, balanced))
    else:
        # As many chunks as the ceiling asks for, not one more for the fraction of a dart
        # that int() took off each (24,415 blocks at a ceiling of 3,051.9 became 9
        # chunks: 5 rounds on 2 slots where 4 would do); the tolerance is for the float
        # arithmetic of the ceiling itself.
        chunks = max(1, math.ceil(darts / exact_size * (1 - 1e-12)))
    # Even out: chunks of one size, the last shorter by less than one dart per chunk;
    # no fewer of them than asked for where a size can give that (9 darts cannot be 4
    # even chunks: 5 of 2 then, not 3 of 3).
    chunks = max(chunks, -(-darts // MAX_CHUNK_DARTS))
    size = -(-darts // chunks)
    if size > 1 and -(-darts // size) < chunks and -(-darts // (size - 1)) <= MAX_CHUNKS:
        size -= 1
    chunks = -(-darts // size)
    if chunks == 1:
        bound_by = "whole job"

    chunk_seconds = size / fastest
    overhead_fraction = capacity.task_overhead / (capacity.task_overhead + chunk_seconds)
    return ChunkChoice(
        darts=darts,
        chunk_size=size,
        chunks=chunks,
        waves=-(-chunks // wave_size(capacity.slots, wave_chunks, result_bytes)),
        bound_by=bound_by,
        chunk_seconds=chunk_seconds,
        overhead_fraction=overhead_fraction,
        expected_seconds=_makespan(size, chunks, capacity),
    )


def wave_size(slots: int, limit: int = MAX_WAVE_CHUNKS, result_bytes: int = 0) -> int:
    """Chunks per wave (chord) for ``slots`` worker slots, at most ``limit``, and at
    most :data:`WAVE_MESSAGE_BYTES` of results of ``result_bytes`` each (0: unknown).

    >>> wave_size(2), wave_size(100), wave_size(10_000), wave_size(10_000, result_bytes=4096)
    (64, 1600, 5000, 224)
    """
    chunks = max(1, min(limit, max(MIN_WAVE_CHUNKS, WAVE_CHUNKS_PER_SLOT * slots)))
    if result_bytes > 0:
        chunks = max(1, min(chunks, WAVE_MESSAGE_BYTES // result_bytes))
    return chunks


def waves_in_flight(slots: int, wave: int) -> int:
    """Waves of ``wave`` chunks to keep in flight for ``slots`` slots: two (the one being
    counted, the next one queued behind it), or more when waves are small for the slots.

    >>> waves_in_flight(100, 1600), waves_in_flight(1600, 224)
    (2, 29)
    """
    return max(2, -(-IN_FLIGHT_CHUNKS_PER_SLOT * slots // max(1, wave)))


def _makespan(size: int, chunks: int, capacity: Capacity) -> float:
    """Expected wall time: the chunks at the rate all slots complete them together.

    An estimate for display, not a bound: it ignores the tail of the last round of
    chunks (at most one chunk's time on the slowest slot, which the balance pressure
    keeps to ``1 / chunks_per_slot`` of the job), and is never less than one chunk's
    time on the fastest slot.
    """
    per_slot = [(h.slots, size / h.rate + capacity.task_overhead) for h in capacity.hosts]
    chunks_per_second = sum(slots / seconds for slots, seconds in per_slot)
    return max(chunks / chunks_per_second, min(seconds for _, seconds in per_slot))


def next_calibration(blocks: int, seconds: float, target: float, first: bool) -> int | None:
    """The blocks of a model's next calibration run after one of ``blocks`` took
    ``seconds``, or None if that run measures the rate well enough.

    A run is long enough from a quarter of ``target``. A first run is the process's first
    call of the model too (imports, caches, page faults): unless it lasted ``target``,
    which drowns such costs, it is run again rather than trusted. A short run says how
    much longer the next must be (at least twice as long).

    >>> next_calibration(1, 2e-6, 0.02, first=False), next_calibration(1, 0.006, 0.02, True)
    (10000, 1)
    >>> next_calibration(8, 0.01, 0.02, first=False) is None
    True
    """
    if seconds >= target / 4 and not (first and seconds < target):
        return None
    if seconds >= target / 4:
        return blocks  # a cold first run: again, warm
    return max(2 * blocks, int(blocks * target / seconds))
