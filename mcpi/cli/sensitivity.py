"""``mcpi-hub sensitivity MODEL``: the Sobol' indices of a model of uniforms, with intervals.

The job runs the model's Saltelli design (:mod:`mcpi.core.sensitivity`) through the
same pipeline as ``run`` (the :data:`~mcpi.hub.request.SENSITIVITY` view): N design
points under randomized QMC, each d + 2 evaluations of the model, spread over the
cluster or the local pool, the same indices bit for bit on either.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any, TextIO

from mcpi.cli import types
from mcpi.cli.job import (
    add_model_job_tail,
    add_param,
    add_replicates,
    check_job_options,
    job_request,
    run_job,
)
from mcpi.core.plan import MAX_DARTS
from mcpi.hub.request import SENSITIVITY

DEFAULT_POINTS = SENSITIVITY.default_samples
DEFAULT_MAX_POINTS = SENSITIVITY.default_max_samples


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "sensitivity",
        help="estimate the Sobol' indices of a model of uniforms, with their intervals",
        description=(
            "Estimate the first-order and total Sobol' indices of each input of MODEL (a "
            "model of uniforms: see `mcpi-hub models`) for one output, each with a 95% "
            "interval from randomized QMC replicates. N design points cost N·(d+2) model "
            "evaluations, spread over the cluster like any job; the same seed gives the "
            "bit-identical indices however the work is split, on the cluster or locally."
        ),
    )
    parser.add_argument("model", metavar="MODEL", nargs="?", help="the model to analyse")
    parser.add_argument(
        "-n",
        "--samples",
        type=types.samples,
        metavar="N",
        help=f"design points, e.g. 1e6 (default {DEFAULT_POINTS:,}, maximum {MAX_DARTS:.0e}); "
        "rounded up to the replicates times a power of two",
    )
    add_param(parser)
    parser.add_argument(
        "--output",
        metavar="NAME",
        help="the output whose variance is shared out (default: the model's first)",
    )
    parser.add_argument(
        "--precision",
        type=types.half_width,
        metavar="H",
        help="instead of N points: double the points until every index's 95%% interval "
        "has half-width at most H",
    )
    parser.add_argument(
        "--max-samples",
        type=types.samples,
        metavar="M",
        help=f"with --precision: stop at M points at most (default {DEFAULT_MAX_POINTS:,})",
    )
    add_replicates(
        parser,
        "independent scrambles, whose indices give the intervals "
        "(default 16, 64 with --precision; at least 8)",
    )
    add_model_job_tail(
        parser,
        what="sensitivity",
        chunk="points per chunk, a power of two (default: from measured rates)",
        plot="draw the indices as bars with their intervals (needs matplotlib)",
    )


def run(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO, stderr: TextIO) -> int:
    check_job_options(args, SENSITIVITY)
    return run_job(args, env, stdout, stderr, job_request(args, SENSITIVITY))
