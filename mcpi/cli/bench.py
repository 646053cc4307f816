"""``mcpi-hub bench``: mcpi against multiprocessing.Pool, Dask and raw RNG on this machine."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from typing import Any, TextIO

from mcpi.cli import types
from mcpi.cli.options import PROG
from mcpi.errors import ExitStatus, UsageError


def add_parser(commands: Any) -> None:
    bench = commands.add_parser(
        "bench",
        help="measure mcpi against multiprocessing.Pool, Dask and raw RNG on this machine",
        description=(
            "Run the same darts through the seed's loops, the mcpi kernel and raw PCG64 on "
            "one core, and through multiprocessing.Pool, Dask LocalCluster, mcpi's local "
            "pool and mcpi over Celery (private local RabbitMQ and Redis) on P processes; "
            "print darts/s with ratios to the Pool and to the limit (P x raw PCG64), and "
            "plot rate against job size. Then small jobs (1, 1e7, 1e8 darts) through the CLI "
            "and a warm API session, and a sweep of 50 jobs, beside the Pool and Dask. "
            "Last, time to precision: the wall time to a 95% half-width for call, ishigami "
            "and pi, mcpi's randomized QMC against the peers' plain Monte Carlo. "
            "Peers: pip install 'mcpi[bench]'."
        ),
    )
    bench.add_argument(
        "--sizes",
        type=types.sizes,
        metavar="N,N,...",
        help="job sizes (default 1e8,1e9,1e10; the table shows the largest)",
    )
    bench.add_argument(
        "--quick", action="store_true", help="sizes 1e7,1e8 and less hub-memory work"
    )
    bench.add_argument(
        "--processes",
        type=types.processes,
        metavar="P",
        help="processes / slots (default: all cores)",
    )
    bench.add_argument(
        "--plot", metavar="FILE.png", default="mcpi-bench.png", help="plot (default %(default)s)"
    )
    bench.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def run(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO, stderr: TextIO) -> int:
    from pathlib import Path

    from mcpi.bench import suite

    if args.plot and not args.plot.endswith(".png"):
        raise UsageError(f"the plot is a PNG file: {args.plot!r} does not end in .png")
    sizes = args.sizes or (suite.QUICK_SIZES if args.quick else suite.DEFAULT_SIZES)
    report = suite.run_bench(
        sizes,
        processes=args.processes or os.cpu_count() or 1,
        plot=Path(args.plot) if args.plot else None,
        rss_sizes=(10**9, 10**16) if args.quick else suite.RSS_SIZES,
        say=lambda message: print(f"{PROG} bench: {message}", file=stderr, flush=True),
        quick=args.quick,
    )
    if args.json:
        stdout.write(json.dumps(suite.as_json(report)) + "\n")
    else:
        stdout.write(suite.as_text(report))
    return ExitStatus.OK
