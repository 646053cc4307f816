"""A model's throughput on mcpi against the peers, as ratios to multiprocessing.Pool.

    python benchmarks/models.py [--model call] [--samples 1e8] [--processes 2] [--rounds 7]

Every backend runs the same model function on the same blocks of the same streams
(block k's generator from ``SeedSequence(seed, spawn_key=(k,))``), on the same cores:

* ``multiprocessing.Pool``: P processes started before the clock, 4 equal chunks per
  process, each summing its samples with numpy (``sum``, ``sum of squares``: what a
  user would write, order-dependent floats);
* Dask ``LocalCluster``: P single-threaded worker processes started first, the same
  chunks through ``client.map``;
* mcpi on its local pool, and mcpi on a private RabbitMQ/Redis with one worker of P
  slots (``mcpi.testing.servers.Sandbox``): plain Monte Carlo (``sampler="mc"``: the
  peers' streams; a model of uniforms would get randomized QMC by default, other
  samples at another cost), automatic chunks, exact sums, each through
  a warm ``mcpi.Session`` (its pool started, or its cluster checked and measured, before
  the clock, as the peers' processes are). The worker is polite, as deployed workers
  are by default (SCHED_IDLE, nice 19): the broker, the backend and the hub, which
  share its cores here, come first, as they do on a broker host that is also a worker.

Every backend is started and warmed up before any clock runs; then each round times
every backend in turn (so drifts in machine speed hit all of them), and the medians of
``--rounds`` rounds are compared: ratios to the Pool's median, with the spread of the
Pool's own runs to show how steady the machine was. mcpi's means are exact (bit-identical
between its rows); the peers' float sums may differ from them in the last digits.
Target: mcpi's rows >= 0.95 of the Pool at 1e8 Black-Scholes samples.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import multiprocessing
import os
import platform
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import mcpi
from mcpi import models
from mcpi.bench.peers import environment_restored
from mcpi.bench.suite import timed
from mcpi.core.model import block_generator

SEED = 20261203
CHUNKS_PER_PROCESS = 4


def chunk_moments(name: str, params: dict[str, Any], first: int, stop: int) -> tuple[float, float]:
    """Blocks [first, stop) of ``name`` summed the way a user would: numpy float sums."""
    model = models.resolve(name)
    s1 = s2 = 0.0
    for block in range(first, stop):
        values = np.asarray(model.function(block_generator(SEED, block), model.block, **params))
        s1 += float(values.sum())
        s2 += float((values * values).sum())
    return s1, s2


def chunks(blocks: int, count: int) -> list[tuple[int, int]]:
    size = -(-blocks // count)
    return [(a, min(a + size, blocks)) for a in range(0, blocks, size)]


def pool_run(pool: Any, name: str, params: dict[str, Any], blocks: int, processes: int) -> float:
    parts = chunks(blocks, processes * CHUNKS_PER_PROCESS)
    tasks = [(name, params, a, b) for a, b in parts]
    sums = pool.starmap(chunk_moments, tasks, chunksize=1)
    return sum(s for s, _ in sums) / (blocks * models.resolve(name).block)


def dask_run(client: Any, name: str, params: dict[str, Any], blocks: int, processes: int) -> float:
    parts = chunks(blocks, processes * CHUNKS_PER_PROCESS)
    futures = client.map(
        chunk_moments,
        [name] * len(parts),
        [params] * len(parts),
        *zip(*parts, strict=True),
        pure=False,
    )
    sums = client.gather(futures)
    return sum(s for s, _ in sums) / (blocks * models.resolve(name).block)


def mcpi_run(session: mcpi.Session, name: str, params: dict[str, Any], samples: int) -> float:
    result = session.run(name, samples=samples, seed=SEED, params=params, sampler="mc")
    return result.report.outputs[0].mean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="call")
    parser.add_argument("--samples", type=float, default=1e8)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    model = models.resolve(args.model)
    params = model.bind(dict(p.split("=", 1) for p in args.param))
    blocks = -(-int(args.samples) // model.block)
    samples = blocks * model.block
    processes = args.processes
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCPI_")}
    print(f"{args.model} {params}: {samples:,} samples on {processes} processes")

    with contextlib.ExitStack() as stack:
        runs = start_backends(stack, args.model, params, blocks, processes, env)
        seconds: dict[str, list[float]] = {label: [] for label in runs}
        means: dict[str, float] = {}
        for _ in range(args.rounds):
            for label, run in runs.items():
                means[label], elapsed = timed(run)
                seconds[label].append(elapsed)

    median = {label: statistics.median(times) for label, times in seconds.items()}
    for label, value in median.items():
        print(
            f"  {label:32} {value:7.2f} s  {samples / value:10.4g} samples/s  mean {means[label]!r}"
        )
    pool = seconds[POOL]
    print(
        f"\nmachine {platform.processor() or platform.machine()}, numpy {np.__version__}; "
        f"median of {args.rounds} rounds, each backend in turn; the Pool's runs spread "
        f"{(max(pool) - min(pool)) / median[POOL]:.1%}"
    )
    for label, value in median.items():
        if label != POOL:
            print(f"  {label:32} {median[POOL] / value:6.2f} x the Pool's rate")


POOL = "multiprocessing.Pool"


def start_backends(
    stack: contextlib.ExitStack,
    name: str,
    params: dict[str, Any],
    blocks: int,
    processes: int,
    env: dict[str, str],
) -> dict[str, Callable[[], float]]:
    """Every backend started and warmed up before any clock runs, as one job each."""
    runs: dict[str, Callable[[], float]] = {}
    block = models.resolve(name).block
    pool = stack.enter_context(multiprocessing.get_context("forkserver").Pool(processes))
    pool_run(pool, name, params, 2 * processes, processes)  # warm up
    runs[POOL] = lambda: pool_run(pool, name, params, blocks, processes)

    local = stack.enter_context(mcpi.Session(local=True, processes=processes, env=env))
    mcpi_run(local, name, params, 2 * processes * block)  # warm up
    runs["mcpi (local pool)"] = lambda: mcpi_run(local, name, params, blocks * block)

    from mcpi.testing.servers import Sandbox

    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mcpi-bench-")))
    box = stack.enter_context(Sandbox(tmp, workers=1, concurrency=processes, polite=True))
    cluster_env = {**env, **box.env(), "MCPI_CACHE_DIR": str(tmp / "cache")}
    cluster = stack.enter_context(mcpi.Session(env=cluster_env))
    # Warm up: the model's rate is measured once and kept, as on a real cluster.
    mcpi_run(cluster, name, params, 2 * processes * block)
    runs["mcpi (Celery, private broker)"] = lambda: mcpi_run(cluster, name, params, blocks * block)

    if importlib.util.find_spec("distributed") is not None:
        distributed: Any = importlib.import_module("dask.distributed")
        # Started last, its settings (MALLOC_TRIM_THRESHOLD_ among them) taken back out of
        # this process's environment at once: the processes above were started without.
        with environment_restored():
            dask = distributed.LocalCluster(
                n_workers=processes,
                threads_per_worker=1,
                dashboard_address=None,
                host="127.0.0.1",
            )
        stack.callback(dask.close)
        client = distributed.Client(dask)
        stack.callback(client.close)
        dask_run(client, name, params, 2 * processes, processes)  # warm up
        runs["Dask LocalCluster"] = lambda: dask_run(client, name, params, blocks, processes)
    return runs


if __name__ == "__main__":
    main()
