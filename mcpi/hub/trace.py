"""A job's running totals as its chunks come in: what ``--plot`` draws.

The trace keeps (seconds, darts, sums) after chunks arrive, thinned so that it never
holds more than ``max_points`` points however many chunks the job has: when full, every
other point is dropped and from then on only every second (fourth, ...) chunk is
recorded. Chunks arrive in completion order, so "darts thrown" is what the hub had
counted at that moment, not a prefix of the stream.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mcpi.core.chunk import ChunkResult
from mcpi.core.tally import add_sums


@dataclass(frozen=True, slots=True)
class Point:
    seconds: float
    darts: int
    #: The exact sums counted by then.
    sums: tuple[int, ...]


@dataclass
class Trace:
    max_points: int = 2000
    clock: Callable[[], float] = time.monotonic
    points: list[Point] = field(default_factory=list)
    #: Darts at each look of a precision-targeted job.
    looks: list[int] = field(default_factory=list)
    darts: int = 0
    sums: tuple[int, ...] = ()
    _stride: int = 1
    _seen: int = 0
    _began: float | None = None

    def start(self, total: int) -> None:
        if self._began is None:
            self._began = self.clock()

    def counted(self, result: ChunkResult) -> None:
        self.darts += result.chunk.darts
        self.sums = add_sums(self.sums, result.sums)
        self._seen += 1
        if self._seen % self._stride == 0:
            self._record()

    def finish(self) -> None:
        if not self.points or self.points[-1].darts != self.darts:
            self._record()

    def look(self, darts: int) -> None:
        self.looks.append(darts)

    def _record(self) -> None:
        began = self._began if self._began is not None else self.clock()
        self.points.append(Point(self.clock() - began, self.darts, self.sums))
        if len(self.points) > self.max_points:
            self.points = self.points[1::2]
            self._stride *= 2
