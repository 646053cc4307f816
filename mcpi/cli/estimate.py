"""``mcpi-hub estimate``: throw darts, report π with its interval and the hosts' throughput.

The job is ``run pi`` (π is the model ``pi``), asked for in darts and reported in π's
words: :data:`~mcpi.hub.request.ESTIMATE`.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any, TextIO

from mcpi.cli import types
from mcpi.cli.job import add_job_options, check_job_options, job_request, run_job
from mcpi.core.plan import MAX_DARTS
from mcpi.hub.request import ESTIMATE

DEFAULT_DARTS = ESTIMATE.default_samples
DEFAULT_MAX_DARTS = ESTIMATE.default_max_samples


def add_parser(commands: Any) -> None:
    est = commands.add_parser(
        "estimate",
        help="throw darts and report π with its confidence interval",
        description=(
            "Throw N darts (split into chunks, counted by the cluster's workers as one "
            "Celery chord per wave) and report π, its 95% confidence interval and the "
            "throughput per host. With no cluster configured, runs on a local process "
            "pool and gives the same count for the same seed."
        ),
    )
    est.add_argument(
        "-n",
        "--darts",
        dest="samples",
        type=types.darts,
        metavar="N",
        help=f"number of darts, e.g. 1e9 (default {DEFAULT_DARTS:.0e}, maximum {MAX_DARTS:.0e})",
    )
    est.add_argument(
        "--precision",
        type=types.precision,
        metavar="H",
        help=(
            "instead of N darts: throw darts until the 95%% interval's half-width is at "
            "most H, e.g. 1e-5 (sequential rule of Chow and Robbins, see the docs)"
        ),
    )
    est.add_argument(
        "--max-darts",
        dest="max_samples",
        type=types.darts,
        metavar="M",
        help=f"with --precision: stop at M darts at most (default {DEFAULT_MAX_DARTS:.0e})",
    )
    est.add_argument(
        "--seed",
        type=types.seed,
        metavar="S",
        help="job seed (default: random, printed in the report)",
    )
    est.add_argument(
        "--resume",
        metavar="JOB",
        help="finish job JOB (see `mcpi-hub jobs`) where it ran, recounting nothing counted",
    )
    est.add_argument(
        "--plot",
        metavar="FILE.png",
        help="draw the running estimate with its band, and darts/s per host (needs matplotlib)",
    )
    est.add_argument(
        "--chunk-size",
        type=types.chunk_size,
        metavar="C",
        help="darts per chunk (default: chosen from the workers' measured rates; see tune)",
    )
    add_job_options(est)


def run(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO, stderr: TextIO) -> int:
    check_job_options(args, ESTIMATE)
    request = job_request(args, ESTIMATE, model="pi")
    return run_job(args, env, stdout, stderr, request)
