"""``mcpi-hub run MODEL``: run a Monte Carlo model and report each output's mean and interval."""

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
from mcpi.hub.request import RUN

DEFAULT_SAMPLES = RUN.default_samples
DEFAULT_MAX_SAMPLES = RUN.default_max_samples


def add_parser(commands: Any) -> None:
    run = commands.add_parser(
        "run",
        help="run a Monte Carlo model and report each output's mean and interval",
        description=(
            "Run MODEL (an installed model, see `mcpi-hub models`; or FILE.py:NAME or "
            "MODULE:NAME on the local pool only) on N samples, split into chunks of whole "
            "blocks, and report each output's mean, standard error and 95% interval. The "
            "same seed gives the bit-identical result however the work is split, on the "
            "cluster or the local pool."
        ),
    )
    run.add_argument("model", metavar="MODEL", nargs="?", help="the model to run")
    run.add_argument(
        "-n",
        "--samples",
        type=types.samples,
        metavar="N",
        help=f"number of samples, e.g. 1e7 (default {DEFAULT_SAMPLES:.0e}, maximum "
        f"{MAX_DARTS:.0e}); rounded up to whole blocks",
    )
    add_param(run)
    run.add_argument(
        "--sweep",
        type=types.sweep,
        action="append",
        default=[],
        metavar="NAME=V1,V2,...",
        help="run one job per value of parameter NAME, all at once, each its own job with "
        "the same seed (repeat to sweep every combination)",
    )
    run.add_argument(
        "--precision",
        type=types.half_width,
        metavar="H",
        help="instead of N samples: run until the 95%% interval's half-width of the output "
        "is at most H (Chow–Robbins rule, see the docs)",
    )
    run.add_argument(
        "--output",
        metavar="NAME",
        help="the output --precision applies to (default: the model's first); NAME@P: "
        "its P quantile's interval (read from its histogram)",
    )
    run.add_argument(
        "--max-samples",
        type=types.samples,
        metavar="M",
        help=f"with --precision: stop at M samples at most (default {DEFAULT_MAX_SAMPLES:.0e})",
    )
    run.add_argument(
        "--sampler",
        choices=("auto", "mc", "rqmc"),
        help="where the samples come from: rqmc (randomized quasi-Monte Carlo, scrambled "
        "Sobol' points: the same precision from far fewer samples) for a model of "
        "uniforms, mc (plain Monte Carlo) for any; auto (the default) picks rqmc where "
        "the model allows it",
    )
    add_replicates(
        run,
        "with rqmc: independent scrambles, whose means give the interval "
        "(default 16, 64 with --precision; at least 8)",
    )
    run.add_argument(
        "--hist",
        type=types.histogram,
        action="append",
        default=[],
        metavar="OUTPUT=LO:HI:BINS",
        help="count OUTPUT's samples in BINS bins between LO and HI, exactly (OUTPUT=log:LO:"
        "HI:BINS for log-spaced bins; repeat for other outputs)",
    )
    run.add_argument(
        "--quantile",
        type=types.quantile,
        action="append",
        default=[],
        metavar="[OUTPUT=]P",
        help="the P quantile (e.g. 0.99) with its 95%% interval, read from the output's "
        "histogram (--hist, or the model's bins; repeat for more)",
    )
    run.add_argument(
        "--exceed",
        type=types.exceedance,
        action="append",
        default=[],
        metavar="OUTPUT>T",
        help="the probability that OUTPUT exceeds T, with its 95%% interval (repeat for more)",
    )
    run.add_argument(
        "--control",
        metavar="NAME",
        help="regress the model's control variate NAME (a function of the same uniforms "
        "with a known mean, see `mcpi-hub models`) out of every output's estimate",
    )
    run.add_argument(
        "--refine",
        action="store_true",
        help="where a quantile's interval is as narrow as the bins allow, run a second pass "
        "over the same samples with finer bins inside it",
    )
    run.add_argument(
        "--antithetic",
        action="store_true",
        help="each sample the mean of an antithetic pair, the model at u and at 1 - u "
        "(a model of uniforms; the report says what the pairs gained)",
    )
    add_model_job_tail(
        run,
        what="model",
        chunk="samples per chunk, rounded up to whole blocks (default: from measured rates)",
        plot="draw each output's running mean with its band (needs matplotlib)",
    )


def run(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO, stderr: TextIO) -> int:
    check_job_options(args, RUN)
    if args.sweep:
        from mcpi.cli.options import cluster_settings
        from mcpi.cli.sweep import run_sweep_job

        settings = cluster_settings(args, env, timeout=args.timeout)
        return run_sweep_job(args, settings, stdout, stderr)
    request = job_request(args, RUN)
    return run_job(args, env, stdout, stderr, request)
