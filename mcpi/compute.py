"""Counting one chunk, with telemetry: the body shared by Celery tasks and the local pool."""

from __future__ import annotations

import os
import socket
import time

from mcpi import __version__
from mcpi.kernel import count_hits
from mcpi.plan import Chunk
from mcpi.tally import ChunkResult, Telemetry


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
