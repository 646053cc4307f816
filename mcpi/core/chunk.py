"""Computing one chunk, with telemetry: the body shared by the Celery task and the local pool.

A :class:`ChunkResult` carries the chunk's exact integer sums, which are all that enters
the job's result: ``(hits,)`` for the π estimate, and for a model job, per output,
(Σx, Σx²) in units of 2**-1074 (:mod:`mcpi.core.exact`). Apart from them it carries
the :class:`Telemetry` of where and how fast the chunk ran, which the hub uses for
throughput figures and chunk sizing, never for the result.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

from mcpi import __version__
from mcpi.core.kernel import count_hits
from mcpi.core.model import Model, ModelCall, chunk_sums
from mcpi.core.plan import Chunk


@dataclass(frozen=True, slots=True)
class Telemetry:
    """Where and how a chunk was computed; never part of its result."""

    host: str
    pid: int
    seconds: float
    version: str


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """A chunk's exact sums, and apart from them, the telemetry of its computation."""

    chunk: Chunk
    sums: tuple[int, ...]
    telemetry: Telemetry

    @property
    def hits(self) -> int:
        """The hit count of a π chunk (its one sum)."""
        return self.sums[0]


def count_chunk(seed: int, chunk: Chunk) -> ChunkResult:
    """Count the hits of π ``chunk`` of stream ``seed`` and record where and how fast."""
    began = time.perf_counter()
    hits = count_hits(seed, chunk.start, chunk.stop)
    return _result(chunk, (hits,), began)


def compute_model_chunk(model: Model, call: ModelCall, seed: int, chunk: Chunk) -> ChunkResult:
    """The exact output sums of model ``chunk`` (whole blocks), with telemetry."""
    began = time.perf_counter()
    sums = chunk_sums(model, call, seed, chunk.start, chunk.stop)
    return _result(chunk, sums, began)


def _result(chunk: Chunk, sums: tuple[int, ...], began: float) -> ChunkResult:
    return ChunkResult(
        chunk=chunk,
        sums=sums,
        telemetry=Telemetry(
            host=socket.gethostname(),
            pid=os.getpid(),
            seconds=time.perf_counter() - began,
            version=__version__,
        ),
    )
