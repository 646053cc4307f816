"""A model's throughput on mcpi against the peers, as ratios to multiprocessing.Pool.

    python benchmarks/models.py [--model call] [--samples 1e8] [--processes 2]

Every backend runs the same model function on the same blocks of the same streams
(block k's generator from ``SeedSequence(seed, spawn_key=(k,))``), on the same cores:

* ``multiprocessing.Pool``: P processes started before the clock, 4 equal chunks per
  process, each summing its samples with numpy (``sum``, ``sum of squares``: what a
  user would write, order-dependent floats);
* Dask ``LocalCluster``: P single-threaded worker processes started first, the same
  chunks through ``client.map``;
* mcpi on its local pool, and mcpi on a private RabbitMQ/Redis with one worker of P
  slots (``mcpi.testing.servers.Sandbox``): automatic chunks, exact sums, each through
  a warm ``mcpi.Session`` (its pool started, or its cluster checked and measured, before
  the clock, as the peers' processes are).

The Pool runs first and again last; ratios are to the mean of both runs, and their
difference shows how steady the machine was. mcpi's means are exact (bit-identical
between its rows); the peers' float sums may differ from them in the last digits.
Target: mcpi's rows >= 0.95 of the Pool at 1e8 Black-Scholes samples.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import multiprocessing
import os
import platform
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
    result = session.run(name, samples=samples, seed=SEED, params=params)
    return result.report.outputs[0].mean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="call")
    parser.add_argument("--samples", type=float, default=1e8)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    model = models.resolve(args.model)
    params = model.bind(dict(p.split("=", 1) for p in args.param))
    blocks = -(-int(args.samples) // model.block)
    samples = blocks * model.block
    processes = args.processes
    rows: list[tuple[str, float, float]] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCPI_")}

    def measure(label: str, run: Callable[[], float]) -> None:
        mean, seconds = timed(run)
        rows.append((label, seconds, mean))
        print(f"  {label:32} {seconds:7.2f} s  {samples / seconds:10.4g} samples/s  mean {mean!r}")

    print(f"{args.model} {params}: {samples:,} samples on {processes} processes")
    context = multiprocessing.get_context("forkserver")
    with context.Pool(processes) as pool:
        pool_run(pool, args.model, params, 2 * processes, processes)  # warm up
        measure(
            "multiprocessing.Pool", lambda: pool_run(pool, args.model, params, blocks, processes)
        )

    if importlib.util.find_spec("distributed") is not None:
        distributed: Any = importlib.import_module("dask.distributed")
        with environment_restored():
            cluster = distributed.LocalCluster(
                n_workers=processes,
                threads_per_worker=1,
                dashboard_address=None,
                host="127.0.0.1",
            )
            client = distributed.Client(cluster)
            try:
                dask_run(client, args.model, params, 2 * processes, processes)  # warm up
                measure(
                    "Dask LocalCluster",
                    lambda: dask_run(client, args.model, params, blocks, processes),
                )
            finally:
                client.close()
                cluster.close()

    with mcpi.Session(local=True, processes=processes, env=env) as local:
        mcpi_run(local, args.model, params, 2 * processes * model.block)  # warm up
        measure("mcpi (local pool)", lambda: mcpi_run(local, args.model, params, samples))

    from mcpi.testing.servers import Sandbox

    with (
        tempfile.TemporaryDirectory(prefix="mcpi-bench-") as tmp,
        Sandbox(Path(tmp), workers=1, concurrency=processes) as box,
    ):
        cluster_env = {**env, **box.env(), "MCPI_CACHE_DIR": str(Path(tmp) / "cache")}
        with mcpi.Session(env=cluster_env) as cluster:
            # Warm up: the model's rate is measured once and kept, as on a real cluster.
            mcpi_run(cluster, args.model, params, 2 * processes * model.block)
            measure(
                "mcpi (Celery, private broker)",
                lambda: mcpi_run(cluster, args.model, params, samples),
            )

    with context.Pool(processes) as pool:
        measure(
            "multiprocessing.Pool (again)",
            lambda: pool_run(pool, args.model, params, blocks, processes),
        )

    baseline = (rows[0][1] + rows[-1][1]) / 2
    print(
        f"\nmachine {platform.processor() or platform.machine()}, numpy {np.__version__}; "
        f"the Pool's two runs differ by {abs(rows[0][1] - rows[-1][1]) / baseline:.1%}"
    )
    for label, seconds, _ in rows[1:-1]:
        print(f"  {label:32} {baseline / seconds:6.2f} x the Pool's rate")


if __name__ == "__main__":
    main()
