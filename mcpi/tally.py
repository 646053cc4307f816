"""Tallies: exact aggregation of chunk results by chunk id.

Celery's chord bookkeeping on Redis counts *messages*, not chunks: a chunk delivered
twice (redelivery after a lost connection, a duplicated publish) adds two results to the
chord and may fire the callback while another chunk is still missing. So neither the
chord callback nor the hub trusts a result count. Both keep a :class:`WaveTally`, which
accepts each chunk id once (an identical duplicate is absorbed, a contradicting one is
an error), checks every chunk against the plan, and names the chunks still missing.
A wave's tally is folded into the :class:`JobTally` once it is complete, so the hub's
memory is bounded by one wave, not by the job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mcpi.job import MalformedMessage, require_field
from mcpi.plan import Chunk, Plan
from mcpi.stats import HostWork


class TallyError(Exception):
    """Chunk results that cannot add up to a correct count."""


class MissingChunks(TallyError):
    """A wave was tallied before all of its chunks had been counted."""

    def __init__(self, missing: list[int]) -> None:
        self.missing = missing
        shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
        super().__init__(f"{len(missing)} chunk(s) missing from the tally: {shown}")


@dataclass(frozen=True, slots=True)
class Telemetry:
    """Where and how a chunk was counted; never part of the count itself."""

    host: str
    pid: int
    seconds: float
    version: str


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """A chunk's exact hit count, and apart from it, the telemetry of its computation."""

    chunk: Chunk
    hits: int
    telemetry: Telemetry

    def to_message(self) -> dict[str, Any]:
        return {
            "chunk": {
                "index": self.chunk.index,
                "start": self.chunk.start,
                "stop": self.chunk.stop,
                "hits": self.hits,
            },
            "telemetry": {
                "host": self.telemetry.host,
                "pid": self.telemetry.pid,
                "seconds": self.telemetry.seconds,
                "version": self.telemetry.version,
            },
        }

    @classmethod
    def from_message(cls, message: Any) -> ChunkResult:
        count = require_field(message, "chunk", dict)
        telemetry = require_field(message, "telemetry", dict)
        seconds = telemetry.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise MalformedMessage("field 'seconds' must be a number")
        return cls(
            chunk=Chunk(
                require_field(count, "index", int),
                require_field(count, "start", int),
                require_field(count, "stop", int),
            ),
            hits=require_field(count, "hits", int),
            telemetry=Telemetry(
                host=require_field(telemetry, "host", str),
                pid=require_field(telemetry, "pid", int),
                seconds=float(seconds),
                version=require_field(telemetry, "version", str),
            ),
        )


@dataclass
class WaveTally:
    """The results of the chunks ``indices`` of ``plan``, each counted once."""

    plan: Plan
    indices: range
    hits: int = 0
    darts: int = 0
    duplicates: int = 0
    hosts: dict[str, HostWork] = field(default_factory=dict)
    versions: set[str] = field(default_factory=set)
    #: Darts of chunks an earlier run of the job counted (a resumed job): in the
    #: count, but not in the hosts' work of this run.
    earlier_darts: int = 0
    _hits_by_chunk: dict[int, int] = field(default_factory=dict, repr=False)

    def add(self, result: ChunkResult, earlier: bool = False) -> bool:
        """Count ``result`` unless its chunk is already counted; True if it was new.

        ``earlier``: the result is one an earlier run of the job counted (resumed).
        """
        chunk = result.chunk
        if chunk.index not in self.indices:
            raise TallyError(f"chunk {chunk.index} does not belong to this wave")
        if chunk != self.plan.chunk(chunk.index):
            raise TallyError(f"chunk {chunk.index} has bounds that do not match the plan")
        if not 0 <= result.hits <= chunk.darts:
            raise TallyError(f"chunk {chunk.index} reports an impossible count")
        seen = self._hits_by_chunk.get(chunk.index)
        if seen is not None:
            if seen != result.hits:
                raise TallyError(
                    f"chunk {chunk.index} was counted twice with different results "
                    f"({seen} and {result.hits} hits)"
                )
            self.duplicates += 1
            return False
        self._hits_by_chunk[chunk.index] = result.hits
        self.hits += result.hits
        self.darts += chunk.darts
        if earlier:
            self.earlier_darts += chunk.darts
        else:
            self.hosts.setdefault(result.telemetry.host, HostWork()).add(
                chunk.darts, result.telemetry.seconds
            )
            self.versions.add(result.telemetry.version)
        return True

    def has(self, index: int) -> bool:
        return index in self._hits_by_chunk

    @property
    def complete(self) -> bool:
        return len(self._hits_by_chunk) == len(self.indices)

    def missing(self) -> list[int]:
        return [i for i in self.indices if i not in self._hits_by_chunk]

    def check_complete(self) -> None:
        if not self.complete:
            raise MissingChunks(self.missing())

    def summary(self) -> dict[str, Any]:
        """The JSON result of a chord callback: totals of a complete wave."""
        self.check_complete()
        return {
            "first": self.indices.start,
            "stop": self.indices.stop,
            "hits": self.hits,
            "darts": self.darts,
            "duplicates": self.duplicates,
        }


@dataclass
class JobTally:
    """Totals of the waves of a job completed so far."""

    plan: Plan
    hits: int = 0
    darts: int = 0
    chunks: int = 0
    duplicates: int = 0
    hosts: dict[str, HostWork] = field(default_factory=dict)
    versions: set[str] = field(default_factory=set)
    earlier_darts: int = 0

    def fold(self, wave: WaveTally) -> None:
        """Add a complete wave's totals."""
        wave.check_complete()
        self.hits += wave.hits
        self.darts += wave.darts
        self.chunks += len(wave.indices)
        self.duplicates += wave.duplicates
        self.earlier_darts += wave.earlier_darts
        for host, work in wave.hosts.items():
            self.hosts.setdefault(host, HostWork()).absorb(work)
        self.versions |= wave.versions

    @property
    def complete(self) -> bool:
        return self.darts == self.plan.darts
