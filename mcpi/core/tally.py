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
totals are exact integers (a π job's hit count, or a model's exact output sums), so
the fold is exact and associative: no grouping or order changes a bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mcpi.core.chunk import ChunkResult
from mcpi.core.plan import Plan
from mcpi.core.stats import HostWork


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

    ``sums`` is ``(hits,)`` for a π job and, for a model job, each output's exact
    (Σx, Σx²) (empty until a chunk is counted). Keyword-only, so that the tallies
    below can put their own fields first.
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

    @property
    def hits(self) -> int:
        """A π job's hit count."""
        return self.sums[0] if self.sums else 0


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


@dataclass
class WaveTally(Totals):
    """The results of the chunks ``indices`` of ``plan``, each counted once.

    ``width``: the sums each result must carry (1 for π; two per output of a model).
    """

    plan: Plan
    indices: range
    width: int = 1
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
        if self.width == 1 and not 0 <= result.hits <= chunk.darts:
            raise TallyError(f"chunk {chunk.index} reports an impossible count")
        seen = self._sums_by_chunk.get(chunk.index)
        if seen is not None:
            if seen != result.sums:
                shown = f"({seen[0]} and {result.hits} hits)" if self.width == 1 else ""
                raise TallyError(
                    f"chunk {chunk.index} was counted twice with different results {shown}".rstrip()
                )
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

    def missing(self) -> list[int]:
        return [i for i in self.indices if i not in self._sums_by_chunk]

    def check_complete(self) -> None:
        if not self.complete:
            raise MissingChunks(self.missing())

    def summary(self) -> dict[str, Any]:
        """The JSON result of a chord callback: totals of a complete wave."""
        self.check_complete()
        sums = {"hits": self.hits} if self.width == 1 else {"sums": [str(s) for s in self.sums]}
        return {
            "first": self.indices.start,
            "stop": self.indices.stop,
            **sums,
            "darts": self.darts,
            "duplicates": self.duplicates,
        }


@dataclass
class JobTally(Totals):
    """Totals of the waves of a job completed so far."""

    plan: Plan
    width: int = 1

    def wave(self, indices: range) -> WaveTally:
        """An empty tally for the wave ``indices`` of this job."""
        return WaveTally(self.plan, indices, self.width)

    def fold(self, wave: WaveTally) -> None:
        """Add a complete wave's totals."""
        wave.check_complete()
        self.absorb(wave)

    @property
    def complete(self) -> bool:
        return self.darts == self.plan.darts
