"""Tallies: exact aggregation of chunk results by chunk id.

Celery's chord bookkeeping on Redis counts *messages*, not chunks: a chunk delivered
twice (redelivery after a lost connection, a duplicated publish) adds two results to the
chord and may fire the callback while another chunk is still missing. So neither the
chord callback nor the hub trusts a result count. Both keep a :class:`WaveTally`, which
accepts each chunk id once (an identical duplicate is absorbed, a contradicting one is
an error), checks every chunk against the plan, and names the chunks still missing.
A wave's tally is folded into the :class:`JobTally` once it is complete, so the hub's
memory is bounded by one wave, not by the job.

Every level keeps the same :class:`Totals` and adds them up with the one fold,
:meth:`Totals.absorb`: a wave's into its job's, a stage's into the whole run's. The
totals are exact integers (the outputs' exact sums), so the fold is exact and
associative: no grouping or order changes a bit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from mcpi.core.chunk import ChunkResult
from mcpi.core.exact import SCALE_BITS
from mcpi.core.plan import Plan
from mcpi.core.stats import HostWork


@dataclass(frozen=True)
class Busy:
    """A running stage's chunks out of the hub's hands, as its executor sees them: what
    a live view (the dashboard) shows beside the chunks counted."""

    #: Sent and not yet counted: queued (at the broker, in the pool's queue) or running.
    out: int
    #: Of those, known to be computing: the local pool's busy processes; on the
    #: cluster, the chunks of the wave being counted that a worker said it started.
    running: int
    #: Backup copies of overdue chunks sent so far (the cluster's).
    backups: int = 0


def ignore_busy(busy: Busy) -> None:
    """For a run nobody watches."""


class TallyError(Exception):
    """Chunk results that cannot add up to a correct count."""


class MissingChunks(TallyError):
    """A wave was tallied before all of its chunks had been counted."""

    def __init__(self, missing: list[int]) -> None:
        self.missing = missing
        shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
        super().__init__(f"{len(missing)} chunk(s) missing from the tally: {shown}")


@dataclass
class Totals:
    """What chunks counted so far add up to: the sums, and this run's work per host.

    ``sums`` are each output's exact (Σx, Σx²) (empty until a chunk is counted).
    Keyword-only, so that the tallies below can put their own fields first.
    """

    sums: tuple[int, ...] = field(default=(), kw_only=True)
    darts: int = field(default=0, kw_only=True)
    chunks: int = field(default=0, kw_only=True)
    duplicates: int = field(default=0, kw_only=True)
    hosts: dict[str, HostWork] = field(default_factory=dict, kw_only=True)
    versions: set[str] = field(default_factory=set, kw_only=True)
    #: Darts of chunks an earlier run of the job counted (a resumed job): in the
    #: count, but not in the hosts' work of this run.
    earlier_darts: int = field(default=0, kw_only=True)
    #: Remarks of the run for the job's report (a resume, a recovery, a backup won).
    notes: list[str] = field(default_factory=list, kw_only=True)
    #: The largest message of the run, in bytes, at most (a cluster's wave callback,
    #: which carries its wave's results); 0 where no message is sent (the local pool).
    largest_message: int = field(default=0, kw_only=True)

    def count(self, result: ChunkResult, earlier: bool = False) -> None:
        """Add one chunk's result (the caller has made sure it is new)."""
        darts = result.chunk.darts
        self.sums = add_sums(self.sums, result.sums)
        self.darts += darts
        self.chunks += 1
        if earlier:
            self.earlier_darts += darts
        else:
            self.hosts.setdefault(result.telemetry.host, HostWork()).add(
                darts, result.telemetry.seconds
            )
            self.versions.add(result.telemetry.version)

    def absorb(self, other: Totals) -> None:
        """Add ``other``'s totals: the one fold of every level."""
        self.sums = add_sums(self.sums, other.sums)
        self.darts += other.darts
        self.chunks += other.chunks
        self.duplicates += other.duplicates
        self.earlier_darts += other.earlier_darts
        for host, work in other.hosts.items():
            self.hosts.setdefault(host, HostWork()).absorb(work)
        self.versions |= other.versions
        self.notes += other.notes
        self.largest_message = max(self.largest_message, other.largest_message)


def add_sums(left: tuple[int, ...], right: tuple[int, ...]) -> tuple[int, ...]:
    """Elementwise sum of two exact sum vectors (an empty one is zero).

    >>> add_sums((), (3, 4)), add_sums((1, 2), (3, 4))
    ((3, 4), (4, 6))
    """
    if not left:
        return right
    if not right:
        return left
    if len(left) != len(right):
        raise TallyError(f"results of {len(left)} and {len(right)} sums cannot be added")
    return tuple(a + b for a, b in zip(left, right, strict=True))


def plausible(sums: tuple[int, ...], samples: int, shape: Shape | None = None) -> bool:
    """Whether each output's (Σx, Σx²) can be the exact sums of ``samples`` samples, and
    each count (a tally's, after the moments of each group: see ``shape``) one of them.

    Σx² ≥ 0, and (Cauchy–Schwarz) (Σx)² ≤ n·Σx², with room for the squares' rounding
    (each x² is rounded once: relatively by 2**-53, or absolutely by 2**-1075 below the
    normal range); 0 ≤ count ≤ n. A result outside this is forged or broken: say, more
    hits than darts.

    >>> plausible((4 << SCALE_BITS, 16 << SCALE_BITS), 1), plausible((8 << SCALE_BITS, 0), 1)
    (True, False)
    """
    group, moments = shape or (len(sums), len(sums))
    for start in range(0, len(sums), group):
        part = sums[start : start + moments]
        for s1, s2 in zip(part[0::2], part[1::2], strict=True):
            if s2 < 0 or s1 * s1 > samples * ((s2 + (s2 >> 50) + samples) << SCALE_BITS):
                return False
        if not all(0 <= c <= samples for c in sums[start + moments : start + group]):
            return False
    return True


#: How a chunk result's integers fall into groups: (integers per group, of which the
#: first are each output's (Σx, Σx²)); see :attr:`mcpi.core.job.Job.shape`.
Shape = tuple[int, int]


@dataclass
class WaveTally(Totals):
    """The results of the chunks ``indices`` of ``plan``, each counted once.

    ``width``: the sums each result must carry, two per output of the job's model.
    """

    plan: Plan
    indices: range
    width: int = 2
    #: Groups and their moments (None: moments alone).
    shape: Shape | None = None
    _sums_by_chunk: dict[int, tuple[int, ...]] = field(default_factory=dict, repr=False)

    def add(self, result: ChunkResult, earlier: bool = False) -> bool:
        """Count ``result`` unless its chunk is already counted; True if it was new.

        ``earlier``: the result is one an earlier run of the job counted (resumed).
        """
        chunk = result.chunk
        if chunk.index not in self.indices:
            raise TallyError(f"chunk {chunk.index} does not belong to this wave")
        if chunk != self.plan.chunk(chunk.index):
            raise TallyError(f"chunk {chunk.index} has bounds that do not match the plan")
        if len(result.sums) != self.width:
            raise TallyError(f"chunk {chunk.index} carries a result of another kind of job")
        if not plausible(result.sums, chunk.darts, self.shape):
            raise TallyError(f"chunk {chunk.index} reports impossible sums")
        seen = self._sums_by_chunk.get(chunk.index)
        if seen is not None:
            if seen != result.sums:
                raise TallyError(f"chunk {chunk.index} was counted twice with different results")
            self.duplicates += 1
            return False
        self._sums_by_chunk[chunk.index] = result.sums
        self.count(result, earlier)
        return True

    def has(self, index: int) -> bool:
        return index in self._sums_by_chunk

    @property
    def complete(self) -> bool:
        return len(self._sums_by_chunk) == len(self.indices)

    @property
    def left(self) -> int:
        """Chunks of the wave not counted yet."""
        return len(self.indices) - len(self._sums_by_chunk)

    def missing(self) -> list[int]:
        return [i for i in self.indices if i not in self._sums_by_chunk]

    def check_complete(self) -> None:
        if not self.complete:
            raise MissingChunks(self.missing())


@dataclass
class JobTally(Totals):
    """Totals of the waves of a job completed so far."""

    plan: Plan
    width: int = 2
    shape: Shape | None = None

    def wave(self, indices: range) -> WaveTally:
        """An empty tally for the wave ``indices`` of this job."""
        return WaveTally(self.plan, indices, self.width, self.shape)

    def fold(self, wave: WaveTally) -> None:
        """Add a complete wave's totals."""
        wave.check_complete()
        self.absorb(wave)

    @property
    def complete(self) -> bool:
        return self.darts == self.plan.darts


class Collector:
    """A job's results as they arrive, in any order: each chunk counted once, into its
    wave's tally, each wave folded into the job's as it completes (so memory is bounded
    by the waves open at once). ``counted`` is told of each chunk counted.

    What the local pool and the in-process executor do with every result; the cluster
    keeps its waves itself, beside their chords.
    """

    def __init__(
        self,
        plan: Plan,
        width: int,
        counted: Callable[[ChunkResult], None] | None = None,
        shape: Shape | None = None,
    ) -> None:
        self.tally = JobTally(plan, width, shape)
        self.counted = counted
        self._open: dict[range, WaveTally] = {}

    def add(self, result: ChunkResult, earlier: bool = False) -> bool:
        """Count ``result`` unless its chunk is counted already; True if it was new.

        ``earlier``: a result an earlier run of the job counted (resumed).
        """
        indices = self.tally.plan.wave_of(result.chunk.index)
        wave = self._open.get(indices)
        if wave is None:
            wave = self._open[indices] = self.tally.wave(indices)
        new = wave.add(result, earlier)
        if new and self.counted is not None:
            self.counted(result)
        if wave.complete:
            self.tally.fold(self._open.pop(indices))
        return new

    def resume(self, earlier: Iterable[ChunkResult]) -> set[int]:
        """Take the results an earlier run counted (the hub's journal); their chunks.

        The tally's notes say how many were taken rather than recomputed.
        """
        done = {result.chunk.index for result in earlier if self.add(result, earlier=True)}
        if done:
            self.tally.notes.append(
                f"resumed: {len(done):,} chunk(s) counted before were taken from the "
                "journal, not recomputed"
            )
        return done
