"""Plans: how a job's darts [0, N) are cut into chunks, and how chunks are grouped in waves.

A job is (seed, N). A plan splits [0, N) into consecutive chunks [a, b) of one size
(the last may be shorter). A plan may also start further along the stream, at dart
``first``: a precision-targeted estimate throws its darts in stages, each stage a plan
of the darts [first, first + N) that follow the previous stage's. Because the kernel's
stream is defined over darts, the total hit count does not depend on the plan; the plan
only decides how work is spread.

Plans are lazy: a job of 1e16 darts is never materialised as a list of chunks, and the
hub submits it in waves (successive chords) of at most ``MAX_WAVE_CHUNKS`` chunks so
that hub and result-backend memory stay bounded whatever N is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

#: The largest job the tool accepts. At the kernel's ~2e8 darts/s per core this is
#: months of one core; the Monte Carlo error at N = 1e16 is ~1.6e-8, far above the
#: kernel's discretisation bias (see :mod:`mcpi.core.kernel`).
MAX_DARTS = 10**16

#: The longest chunk: at ~5e7 darts/s (a slow core) about 23 minutes, inside RabbitMQ's
#: default 30-minute consumer timeout, which would otherwise close the channel of a
#: late-acknowledging worker mid-chunk.
MAX_CHUNK_DARTS = 2**36

#: Chunks per job: beyond this per-task overhead dominates any realistic job.
MAX_CHUNKS = 10**7

#: Chunks per wave (one chord): bounds the hub's bookkeeping and the chord's result
#: list in the backend (~200 bytes per chunk).
MAX_WAVE_CHUNKS = 5_000


@dataclass(frozen=True, slots=True)
class Chunk:
    """Darts [start, stop) of a job; ``index`` is the chunk's position in the plan."""

    index: int
    start: int
    stop: int

    @property
    def darts(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True, slots=True)
class Plan:
    """Darts [first, first + darts) cut into chunks of ``chunk_size`` (the last one shorter)."""

    darts: int
    chunk_size: int
    first: int = 0

    def __post_init__(self) -> None:
        check_darts(self.darts)
        if isinstance(self.first, bool) or not isinstance(self.first, int):
            raise ValueError("the first dart must be an integer")
        if not 0 <= self.first <= MAX_DARTS - self.darts:
            raise ValueError(
                f"darts [{self.first:,}, {self.first + self.darts:,}) are not inside "
                f"[0, {MAX_DARTS:.0e})"
            )
        if not 1 <= self.chunk_size <= MAX_CHUNK_DARTS:
            raise ValueError(
                f"chunk size must be between 1 and {MAX_CHUNK_DARTS:,} darts, "
                f"not {self.chunk_size:,}"
            )
        if self.chunk_count > MAX_CHUNKS:
            raise ValueError(
                f"{self.chunk_count:,} chunks is too many (maximum {MAX_CHUNKS:,}); "
                "use a larger chunk size"
            )

    @property
    def chunk_count(self) -> int:
        return -(-self.darts // self.chunk_size)

    def chunk(self, index: int) -> Chunk:
        if not 0 <= index < self.chunk_count:
            raise IndexError(f"chunk {index} is not in a plan of {self.chunk_count} chunks")
        start = self.first + index * self.chunk_size
        return Chunk(index, start, min(start + self.chunk_size, self.first + self.darts))

    def chunks(self, first: int = 0, stop: int | None = None) -> Iterator[Chunk]:
        """Chunks ``first`` .. ``stop - 1`` (default: to the end), lazily."""
        stop = self.chunk_count if stop is None else min(stop, self.chunk_count)
        for index in range(first, stop):
            yield self.chunk(index)

    def waves(self, max_chunks: int = MAX_WAVE_CHUNKS) -> Iterator[range]:
        """Consecutive ranges of chunk indices, each at most ``max_chunks`` long."""
        for first in range(0, self.chunk_count, max_chunks):
            yield self.wave_of(first, max_chunks)

    def wave_of(self, index: int, max_chunks: int = MAX_WAVE_CHUNKS) -> range:
        """The wave (range of chunk indices) that chunk ``index`` belongs to."""
        first = index - index % max_chunks
        return range(first, min(first + max_chunks, self.chunk_count))


def check_darts(darts: int) -> int:
    """Return ``darts`` if it is a valid job size, else raise ValueError."""
    if isinstance(darts, bool) or not isinstance(darts, int):
        raise ValueError(f"the number of darts must be an integer, not {type(darts).__name__}")
    if darts < 1:
        raise ValueError(f"the number of darts must be at least 1, not {darts:,}")
    if darts > MAX_DARTS:
        raise ValueError(f"{darts:.3g} darts is more than the maximum of {MAX_DARTS:.0e}")
    return darts
