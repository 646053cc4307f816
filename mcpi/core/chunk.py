"""Counting one chunk, with telemetry: the body shared by the Celery task and the local pool.

A :class:`ChunkResult` carries the chunk's exact hit count, which is all that enters the
job's total, and apart from it the :class:`Telemetry` of where and how fast it ran,
which the hub uses for throughput figures and chunk sizing, never for the count.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

from mcpi import __version__
from mcpi.core.kernel import count_hits
from mcpi.core.plan import Chunk


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


def count_chunk(seed: int, chunk: Chunk) -> ChunkResult:
    """Count ``chunk`` of stream ``seed`` and record where and how fast it ran."""
    began = time.perf_counter()
    hits = count_hits(seed, chunk.start, chunk.stop)
    seconds = time.perf_counter() - began
    return ChunkResult(
        chunk=chunk,
        hits=hits,
        telemetry=Telemetry(
            host=socket.gethostname(), pid=os.getpid(), seconds=seconds, version=__version__
        ),
    )
