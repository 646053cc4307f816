"""Computing one chunk, with telemetry: the body shared by the Celery task and the local pool.

A :class:`ChunkResult` carries the chunk's exact integer sums, which are all that enters
the job's result: per output of the job's model, (Σx, Σx²) in units of 2**-1074
(:mod:`mcpi.core.exact`). Apart from them it carries the :class:`Telemetry` of where and
how fast the chunk ran, which the hub uses for throughput figures and chunk sizing,
never for the result.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mcpi import __version__
from mcpi.core.model import Model, chunk_sums, rqmc_chunk_sums
from mcpi.core.plan import Chunk
from mcpi.core.sampler import RQMC

if TYPE_CHECKING:
    from mcpi.core.job import Job


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


def compute_chunk(model: Model, job: Job, chunk: Chunk) -> ChunkResult:
    """The exact output sums of ``chunk`` of ``job`` (``model`` being the job's model's
    code), with telemetry."""
    began = time.perf_counter()
    sampler, call = job.sampler, job.model
    if isinstance(sampler, RQMC):
        replicate, first, stop = sampler.locate(job.plan, chunk)
        sums = rqmc_chunk_sums(
            model, call, job.seed, sampler.replicates, replicate, first, stop, job.tallies
        )
    else:
        sums = chunk_sums(model, call, job.seed, chunk.start, chunk.stop, job.tallies)
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
