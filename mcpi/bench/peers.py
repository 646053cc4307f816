"""What ``mcpi-hub bench`` measures mcpi against, each at its own best documented settings.

* The seed's two versions of a dart count, as a tutorial writes them: a pure-Python
  loop over ``random.random()``, and the Celery-tutorial task body (an array of random
  points from numpy, then a Python loop over it). Both are slow enough to be measured
  on a small N and reported as a rate.
* Raw PCG64 generation (``random_raw`` in blocks), numpy's own rate for the stream, and
  the PCG64 step rate (:func:`~mcpi.core.kernel.generator_steps`): the limit of any
  kernel drawing one 64-bit number per dart, per core.
* ``multiprocessing.Pool`` over all cores: the pool started before the clock, the job
  cut into 4 equal chunks per process and handed out one at a time
  (``imap_unordered``, chunksize 1) — few tasks, each far longer than the pool's
  per-task cost, as the ``multiprocessing`` docs advise for long tasks.
* Dask distributed: a ``LocalCluster`` of one single-threaded worker process per core
  (processes, not threads, for GIL-bound Python; ``threads_per_worker=1`` as Dask's
  docs suggest for such work), started before the clock; 4 chunks per worker through
  ``client.map`` (``pure=False``) and a sum on the cluster, with tasks far above the
  ~100 ms Dask recommends as a minimum.
* Ray: a local Ray started before the clock with one CPU per core, the kernel a remote
  function of ``num_cpus=1`` (one task per core at a time, as Ray's docs advise for
  CPU-bound tasks), 4 chunks per core, ``ray.get`` on the list of their refs — tasks
  far above the ~100 ms Ray's docs give as the point where task overhead stops
  mattering.
* ipyparallel: a local controller and one engine per core, started before the clock;
  4 chunks per engine through a load-balanced view's ``map_sync``.

The parallel peers count the same darts (same seed and stream) as mcpi, so every row of
a size must report the same hit count, which the benchmark checks. They count with the
numpy reference kernel (:func:`~mcpi.core.kernel.count_hits_reference`), the kernel a
user of those frameworks would write, unless given another (the small-jobs rows give
them mcpi's own, to compare per-job overhead alone).
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import multiprocessing
import os
import random
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from mcpi.core.kernel import BLOCK_DARTS, count_hits_reference

#: A dart-counting kernel: hits among darts [start, stop) of stream ``seed``.
Kernel = Callable[[int, int, int], int]

#: Chunks per process, worker or engine for every peer.
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


def _count(task: tuple[Kernel, int, int, int]) -> int:
    kernel, seed, start, stop = task
    return kernel(seed, start, stop)


class PoolPeer:
    """``multiprocessing.Pool`` over ``processes`` processes."""

    name = "multiprocessing.Pool"
    settings = "Pool(P) started first; 4 equal chunks per process, imap_unordered"

    def __init__(self, processes: int, kernel: Kernel = count_hits_reference) -> None:
        self.processes = processes
        self.kernel = kernel
        self.pool = multiprocessing.get_context("forkserver").Pool(processes)

    def count(self, darts: int, seed: int) -> int:
        chunks = equal_chunks(darts, self.processes * PEER_CHUNKS_PER_PROCESS)
        tasks = [(self.kernel, seed, a, b) for a, b in chunks]
        return sum(self.pool.imap_unordered(_count, tasks, chunksize=1))

    def count_many(self, jobs: list[tuple[int, int]]) -> list[int]:
        """Hits of each (seed, darts) job, all at once: one task per job (``pool.map``)."""
        tasks = [(self.kernel, seed, 0, darts) for seed, darts in jobs]
        return self.pool.map(_count, tasks, chunksize=1)

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()


class DaskPeer:
    """Dask distributed on a local cluster of single-threaded worker processes."""

    name = "Dask LocalCluster"
    settings = "P worker processes x 1 thread, started first; 4 chunks per worker, client.map"

    def __init__(self, processes: int, kernel: Kernel = count_hits_reference) -> None:
        # Imported as Any: an optional dependency, typed or not depending on its version.
        distributed: Any = importlib.import_module("dask.distributed")

        self.processes = processes
        self.kernel = kernel
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
            self.kernel, [seed] * len(chunks), *zip(*chunks, strict=True), pure=False
        )
        return int(self.client.submit(sum, futures).result())

    def count_many(self, jobs: list[tuple[int, int]]) -> list[int]:
        """Hits of each (seed, darts) job, all at once: one task per job, gathered."""
        seeds, sizes = zip(*jobs, strict=True)
        futures = self.client.map(self.kernel, seeds, [0] * len(jobs), sizes, pure=False)
        return [int(h) for h in self.client.gather(futures)]

    def close(self) -> None:
        with contextlib.suppress(Exception):  # shutting down; nothing to report
            self.client.close()
            self.cluster.close()


class RayPeer:
    """Ray on this machine: one CPU per core, the kernel a ``num_cpus=1`` remote function."""

    name = "Ray"
    settings = "ray.init(num_cpus=P) first; remote(num_cpus=1), 4 chunks per core, ray.get"

    def __init__(self, processes: int, kernel: Kernel = count_hits_reference) -> None:
        self.ray: Any = importlib.import_module("ray")
        self.processes = processes
        # A private local instance on loopback only, without its dashboard or log relay,
        # its sessions' files in a directory of its own (removed by close).
        self.files = tempfile.mkdtemp(prefix="mcpi-ray-")
        try:
            self.ray.init(
                address="local",
                num_cpus=processes,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
                _node_ip_address="127.0.0.1",
                _temp_dir=self.files,
            )
        except BaseException:
            self.close()
            raise
        self.task: Any = self.ray.remote(num_cpus=1)(kernel)

    def count(self, darts: int, seed: int) -> int:
        chunks = equal_chunks(darts, self.processes * PEER_CHUNKS_PER_PROCESS)
        return sum(self.ray.get([self.task.remote(seed, a, b) for a, b in chunks]))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ray.shutdown()
        shutil.rmtree(self.files, ignore_errors=True)


class IpyparallelPeer:
    """ipyparallel: a local controller and one engine per core, a load-balanced view."""

    name = "ipyparallel"
    settings = "controller + P engines started first; 4 chunks per engine, map_sync"

    def __init__(self, processes: int, kernel: Kernel = count_hits_reference) -> None:
        ipp: Any = importlib.import_module("ipyparallel")
        self.processes = processes
        self.kernel = kernel
        # Its profile (connection files, keys, logs) in a directory of its own, not ~/.ipython.
        self.files = tempfile.mkdtemp(prefix="mcpi-ipp-")
        self.cluster: Any = ipp.Cluster(
            n=processes, controller_ip="127.0.0.1", profile_dir=self.files, log_level=40
        )
        try:
            self.client: Any = self.cluster.start_and_connect_sync()
            self.client.wait_for_engines(processes, timeout=120)
        except BaseException:
            self.close()
            raise
        self.view: Any = self.client.load_balanced_view()

    def count(self, darts: int, seed: int) -> int:
        chunks = equal_chunks(darts, self.processes * PEER_CHUNKS_PER_PROCESS)
        starts, stops = zip(*chunks, strict=True)
        return sum(self.view.map_sync(self.kernel, [seed] * len(chunks), starts, stops))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.cluster.stop_cluster_sync()
        shutil.rmtree(self.files, ignore_errors=True)


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
