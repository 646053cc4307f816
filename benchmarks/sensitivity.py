"""Sobol' indices of the Ishigami function: mcpi beside SALib and scipy.

    python benchmarks/sensitivity.py [--processes 2] [--quick]

The same function and sample count for every tool (N design points, N·(d+2)
evaluations): the median wall time, the largest error against the exact indices, the
widest interval and how often every interval covered (see :mod:`mcpi.bench.sensitivity`).
mcpi runs on a warm local pool of P processes (a cluster runs the same chunks: the
time-to-precision benchmark measures what Celery adds).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import mcpi
from mcpi.bench import sensitivity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--quick", action="store_true", help="N = 4,096 only, two seeds")
    args = parser.parse_args()
    sizes = (1 << 12,) if args.quick else sensitivity.SIZES
    seeds = sensitivity.SEEDS[:2] if args.quick else sensitivity.SEEDS
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mcpi-bench-")))
        env = {"XDG_CONFIG_HOME": str(tmp / "config"), "XDG_CACHE_HOME": str(tmp / "cache")}
        sessions: dict[str, Any] = {
            f"mcpi, local pool of {args.processes}": stack.enter_context(
                mcpi.Session(local=True, processes=args.processes, env=env)
            )
        }
        found = list(sensitivity.rows(sessions, sizes, seeds))
    sys.stdout.write("\n".join(sensitivity.table(found)) + "\n")


if __name__ == "__main__":
    main()
