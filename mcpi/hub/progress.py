"""Observers of a running job: the progress bar, the trace, or nobody.

The hub tells its observer when a stage starts and finishes; the executor tells it of
each chunk it counts, through :meth:`Progress.counted`, the one callable it is given.
"""

from __future__ import annotations

from typing import Protocol

from mcpi.core.chunk import ChunkResult


class Progress(Protocol):
    """What the hub and its executor tell an observer while a job (stage) runs."""

    def start(self, total: int) -> None: ...
    def counted(self, result: ChunkResult) -> None: ...
    def finish(self) -> None: ...


class Tee:
    """Tells several observers the same thing."""

    def __init__(self, *observers: Progress) -> None:
        self.observers = observers

    def start(self, total: int) -> None:
        for observer in self.observers:
            observer.start(total)

    def counted(self, result: ChunkResult) -> None:
        for observer in self.observers:
            observer.counted(result)

    def finish(self) -> None:
        for observer in self.observers:
            observer.finish()


class NoProgress:
    """For pipes, ``--json`` and tests: shows nothing."""

    def start(self, total: int) -> None:
        pass

    def counted(self, result: ChunkResult) -> None:
        pass

    def finish(self) -> None:
        pass
