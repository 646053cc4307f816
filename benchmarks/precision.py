"""Time to precision: mcpi's randomized QMC against the peers' plain Monte Carlo.

    python benchmarks/precision.py [--processes 2] [--quick] [--no-celery]

The wall time to a 95 % half-width H for ``call`` (±1e-4), ``ishigami`` (±1e-4) and
``pi`` (±1e-5): mcpi measured on its local pool and on a private RabbitMQ/Redis with one
polite worker of P slots (``mcpi.testing.servers.Sandbox``), the peers'
(multiprocessing.Pool, Dask, Ray) plain Monte Carlo measured where it takes under a
minute and computed from its measured rate otherwise (see :mod:`mcpi.bench.precision`).
``mcpi-hub bench`` prints the same section after its dart tables.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from pathlib import Path

from mcpi.bench import precision
from mcpi.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--quick", action="store_true", help="one round, small rate jobs")
    parser.add_argument("--no-celery", action="store_true", help="leave out the Celery rows")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        cluster = None
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mcpi-bench-")))
        if not args.no_celery:
            from mcpi.testing.servers import Sandbox

            box = stack.enter_context(
                Sandbox(tmp, workers=1, concurrency=args.processes, polite=True)
            )
            cluster = Settings(
                broker_url=box.rabbitmq.url,
                result_backend=box.redis.url,
                cache_dir=tmp / "cache",
                tls_ca=box.ca.cert if box.ca else None,
            )
        local = Settings(cache_dir=tmp / "local-cache")
        result = precision.measure(
            args.processes,
            local,
            cluster,
            quick=args.quick,
            say=lambda message: print(message, flush=True),
        )
    print("\n".join(precision.as_text(result)))


if __name__ == "__main__":
    main()
