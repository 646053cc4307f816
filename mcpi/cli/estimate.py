"""``mcpi-hub estimate``: throw darts, report π with its interval and the hosts' throughput."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any, TextIO

from mcpi.cli import types
from mcpi.cli.options import add_cluster, add_where, cluster_settings
from mcpi.core.plan import MAX_DARTS
from mcpi.errors import ExitStatus, UsageError

DEFAULT_DARTS = 10**8
#: The default bound of a precision-targeted job: about an hour of 2 x 10^8 darts/s.
DEFAULT_MAX_DARTS = 10**12


def add_parser(commands: Any) -> None:
    est = commands.add_parser(
        "estimate",
        help="throw darts and report π with its confidence interval",
        description=(
            "Throw N darts (split into chunks, counted by the cluster's workers as one "
            "Celery chord per wave) and report π, its 95%% confidence interval and the "
            "throughput per host. With no cluster configured, runs on a local process "
            "pool and gives the same count for the same seed."
        ),
    )
    est.add_argument(
        "-n",
        "--darts",
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
            "most H, e.g. 1e-5 (sequential rule of Chow and Robbins, see the README)"
        ),
    )
    est.add_argument(
        "--max-darts",
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
    est.add_argument(
        "--timeout",
        type=types.setting("timeout", "--timeout"),
        metavar="T",
        help="give up if the job has not finished after T (90, 5m, 2h)",
    )
    est.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    add_where(est)
    est.add_argument("--no-progress", action="store_true", help="no live progress bar")
    add_cluster(est)


def run(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO, stderr: TextIO) -> int:
    from mcpi.cli.progress import ProgressBar
    from mcpi.cli.render import as_json, as_text
    from mcpi.core.precision import PrecisionTarget
    from mcpi.hub.progress import NoProgress, Progress
    from mcpi.hub.request import EstimateRequest
    from mcpi.hub.run import run_estimate

    check_options(args)
    plot = None
    if args.plot is not None:
        from mcpi.cli.plot import check_plot_path

        plot = check_plot_path(args.plot)
    settings = cluster_settings(args, env, timeout=args.timeout)
    precision = None
    if args.precision is not None:
        precision = PrecisionTarget(args.precision, args.max_darts or DEFAULT_MAX_DARTS)
    request = EstimateRequest(
        darts=args.darts or DEFAULT_DARTS,
        seed=args.seed,
        chunk_size=args.chunk_size,
        local=args.local,
        processes=args.processes,
        precision=precision,
        resume=args.resume,
    )
    show_progress = not (args.json or args.no_progress) and stderr.isatty()
    progress: Progress = ProgressBar(stderr) if show_progress else NoProgress()
    report = run_estimate(request, settings, progress)
    if args.json:
        stdout.write(json.dumps(as_json(report)) + "\n")
    else:
        stdout.write(as_text(report))
    if plot is not None:
        from mcpi.cli.plot import plot_job

        plot_job(report, plot)
        if not args.json:
            stdout.write(f"plot: {plot}\n")
    return ExitStatus.OK if report.precision_reached else ExitStatus.PRECISION_NOT_REACHED


def check_options(args: argparse.Namespace) -> None:
    """Options that contradict each other, refused before anything runs."""
    if args.resume is not None:
        given = [
            flag
            for flag, value in (
                ("--darts", args.darts),
                ("--seed", args.seed),
                ("--chunk-size", args.chunk_size),
                ("--precision", args.precision),
                ("--max-darts", args.max_darts),
                ("--local", args.local or None),
            )
            if value is not None
        ]
        if given:
            raise UsageError(f"--resume finishes a job as it was started: drop {', '.join(given)}")
    if args.precision is not None and args.darts is not None:
        raise UsageError(
            "give --darts or --precision, not both (bound --precision with --max-darts)"
        )
    if args.max_darts is not None and args.precision is None:
        raise UsageError("--max-darts bounds --precision; for a fixed number use --darts")
