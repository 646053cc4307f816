"""The whole time of small cluster jobs, CLI and warm API session, beside the Pool's.

    python benchmarks/overhead.py [--processes 2] [--repeats 3]

A private RabbitMQ/Redis with one worker of P slots (``mcpi.testing.servers.Sandbox``);
its rates are learnt first (``mcpi-hub tune``), as a cluster's are after its first job.
Each row is the best of ``--repeats`` runs of ``mcpi-hub estimate -n N`` as a fresh
process (imports, preflight, submission, results, report), and the job's own wall
time from its report; the session column is a job through a warm ``mcpi.Session``
on the same cluster (one job run before the clock, as a notebook's second cell); the
Pool row is ``multiprocessing.Pool(P)``, started before the clock, counting the same
darts. What separates them is mcpi's per-job overhead.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mcpi
from mcpi.bench import peers
from mcpi.bench.suite import timed
from mcpi.testing.servers import Sandbox

SIZES = (1, 10**7, 10**8)


def cli_job(env: dict[str, str], darts: int) -> tuple[float, float]:
    """(whole command seconds, the report's job wall seconds) of one estimate."""
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mcpi", "estimate", "--json", "--no-progress", "-n", str(darts)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    whole = time.perf_counter() - began
    return whole, float(json.loads(done.stdout)["wall_seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    base = {k: v for k, v in os.environ.items() if not k.startswith("MCPI_")}
    with (
        tempfile.TemporaryDirectory(prefix="mcpi-overhead-") as tmp,
        Sandbox(Path(tmp), workers=1, concurrency=args.processes) as box,
    ):
        env = {**base, **box.env(), "MCPI_CACHE_DIR": str(Path(tmp) / "cache")}
        subprocess.run(
            [sys.executable, "-m", "mcpi", "tune", "-n", "1e9"],
            env=env,
            check=True,
            capture_output=True,
        )
        pool = peers.PoolPeer(args.processes)
        session = mcpi.Session(env=env)
        try:
            pool.count(10**6, 1)  # warm up
            session.run("pi", 10**6, seed=1)  # warm up
            print(
                f"{'darts':>8}  {'CLI whole':>10}  {'job wall':>9}  {'session':>8}  "
                f"{'Pool':>8}  CLI/Pool  session/Pool"
            )
            for darts in SIZES:
                whole, wall = min(cli_job(env, darts) for _ in range(args.repeats))
                warm = min(
                    timed(lambda n=darts: session.run("pi", n, seed=1))[1]
                    for _ in range(args.repeats)
                )
                pool_seconds = min(
                    timed(lambda n=darts: pool.count(n, 1))[1] for _ in range(args.repeats)
                )
                print(
                    f"{darts:8.0e}  {whole:9.3f}s  {wall:8.3f}s  {warm:7.3f}s  "
                    f"{pool_seconds:7.3f}s  {whole / pool_seconds:8.1f}  "
                    f"{warm / pool_seconds:12.1f}"
                )
        finally:
            session.close()
            pool.close()


if __name__ == "__main__":
    main()
