"""What ``mcpi-hub bench`` measures mcpi against, each at its own best documented settings.

* The seed's two versions of a dart count, as a tutorial writes them: a pure-Python
  loop over ``random.random()``, and the Celery-tutorial task body (an array of random
  points from numpy, then a Python loop over it). Both are slow enough to be measured
  on a small N and reported as a rate.
* Raw PCG64 generation (``random_raw`` in blocks): the limit of any kernel drawing one
  64-bit number per dart, per core.
* ``multiprocessing.Pool`` over all cores, counting with the mcpi kernel: the pool
  started before the clock, the job cut into 4 equal chunks per process and handed out
  one at a time (``imap_unordered``, chunksize 1) — few tasks, each far longer than
  the pool's per-task cost, as the ``multiprocessing`` docs advise for long tasks.
* Dask distributed: a ``LocalCluster`` of one single-threaded worker process per core
  (processes, not threads, for GIL-bound Python; ``threads_per_worker=1`` as Dask's
  docs suggest for such work), started before the clock; 4 chunks per worker through
  ``client.map`` (``pure=False``) and a sum on the cluster, with tasks far above the
  ~100 ms Dask recommends as a minimum.

The parallel peers count with the same kernel, seed and stream as mcpi, so every row
of a size must report the same hit count, which the benchmark checks.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import multiprocessing
import os
import random
from collections.abc import Iterator
from typing import Any

import numpy as np

from mcpi.core.kernel import BLOCK_DARTS, count_hits

#: Chunks per process for the Pool and per worker for Dask.
PEER_CHUNKS_PER_PROCESS = 4


def seed_naive_loop(darts: int, seed: int = 1) -> int:
    """The seed's first version: one dart at a time in pure Python."""
    rng = random.Random(seed)
    hits = 0
    for _ in range(darts):
        x, y = rng.random(), rng.random()
        if x * x + y * y <= 1.0:
            hits += 1
    return hits


def seed_task_body(darts: int, seed: int = 1) -> int:
    """The seed's Celery task body: an array of points, then a Python loop over it."""
    points = np.random.default_rng(seed).random((darts, 2))
    hits = 0
    for x, y in points:
        if x * x + y * y <= 1.0:
            hits += 1
    return hits


def raw_generation(darts: int, seed: int = 1) -> None:
    """Raw PCG64 output, one 64-bit number per dart, in the kernel's block size."""
    generator = np.random.PCG64(seed)
    full, rest = divmod(darts, BLOCK_DARTS)
    for _ in range(full):
        generator.random_raw(BLOCK_DARTS)
    generator.random_raw(rest)


def equal_chunks(darts: int, count: int) -> list[tuple[int, int]]:
    """[start, stop) of ``count`` (or fewer, for a tiny job) chunks of near-equal size."""
    count = max(1, min(count, darts))
    bounds = [darts * i // count for i in range(count + 1)]
    return list(itertools.pairwise(bounds))


def _count(task: tuple[int, int, int]) -> int:
    seed, start, stop = task
    return count_hits(seed, start, stop)


class PoolPeer:
    """``multiprocessing.Pool`` over ``processes`` processes, with the mcpi kernel."""

    name = "multiprocessing.Pool"
    settings = "Pool(P) started first; 4 equal chunks per process, imap_unordered"

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self.pool = multiprocessing.get_context("forkserver").Pool(processes)

    def count(self, darts: int, seed: int) -> int:
        chunks = equal_chunks(darts, self.processes * PEER_CHUNKS_PER_PROCESS)
        tasks = [(seed, a, b) for a, b in chunks]
        return sum(self.pool.imap_unordered(_count, tasks, chunksize=1))

    def count_many(self, jobs: list[tuple[int, int]]) -> list[int]:
        """Hits of each (seed, darts) job, all at once: one task per job (``pool.map``)."""
        return self.pool.map(_count, [(seed, 0, darts) for seed, darts in jobs], chunksize=1)

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()


class DaskPeer:
    """Dask distributed on a local cluster of single-threaded worker processes."""

    name = "Dask LocalCluster"
    settings = "P worker processes x 1 thread, started first; 4 chunks per worker, client.map"

    def __init__(self, processes: int) -> None:
        # Imported as Any: an optional dependency, typed or not depending on its version.
        distributed: Any = importlib.import_module("dask.distributed")

        self.processes = processes
        self.cluster: Any = distributed.LocalCluster(
            n_workers=processes,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        )
        self.client: Any = distributed.Client(self.cluster)

    def count(self, darts: int, seed: int) -> int:
        chunks = equal_chunks(darts, self.processes * PEER_CHUNKS_PER_PROCESS)
        futures = self.client.map(
            count_hits, [seed] * len(chunks), *zip(*chunks, strict=True), pure=False
        )
        return int(self.client.submit(sum, futures).result())

    def count_many(self, jobs: list[tuple[int, int]]) -> list[int]:
        """Hits of each (seed, darts) job, all at once: one task per job, gathered."""
        seeds, sizes = zip(*jobs, strict=True)
        futures = self.client.map(count_hits, seeds, [0] * len(jobs), sizes, pure=False)
        return [int(h) for h in self.client.gather(futures)]

    def close(self) -> None:
        with contextlib.suppress(Exception):  # shutting down; nothing to report
            self.client.close()
            self.cluster.close()


@contextlib.contextmanager
def environment_restored() -> Iterator[None]:
    """Undo what a peer writes into this process's environment, which later rows inherit."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def quiet_dask() -> Iterator[None]:
    """Dask logs every worker's start and stop at INFO; the benchmark prints a table."""
    import logging

    loggers = [logging.getLogger(n) for n in ("distributed", "dask")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
