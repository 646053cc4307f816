"""What ``estimate``, ``run`` and ``run --sweep`` share: a job's options, their one checker,
and running a job to its report.

``estimate`` is ``run pi`` in π's words (the :data:`~mcpi.hub.request.ESTIMATE` view):
``-n/--darts`` and ``--max-darts`` are ``run``'s ``-n/--samples`` and
``--max-samples`` (the same ``samples`` and ``max_samples`` destinations), so one
checker serves both, naming each option as the command spells it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import TextIO

from mcpi.cli import types
from mcpi.cli.options import add_cluster, add_where, cluster_settings
from mcpi.errors import ExitStatus, UsageError
from mcpi.hub.request import JobRequest, View

#: The options that define a job, in the order a refusal names them: (flag, destination);
#: a command without one (``estimate`` has no MODEL or --param) skips it, and the size
#: and bound flags are the view's.
JOB_DEFINING = (
    ("MODEL", "model"),
    ("size", "samples"),
    ("--seed", "seed"),
    ("--param", "param"),
    ("--sweep", "sweep"),
    ("--chunk-size", "chunk_size"),
    ("--precision", "precision"),
    ("--output", "output"),
    ("bound", "max_samples"),
    ("--sampler", "sampler"),
    ("--replicates", "replicates"),
    ("--hist", "hist"),
    ("--quantile", "quantile"),
    ("--exceed", "exceed"),
    ("--control", "control"),
    ("--antithetic", "antithetic"),
    ("--refine", "refine"),
    ("--local", "local"),
)


def add_job_options(parser: argparse.ArgumentParser) -> None:
    """``--timeout``, ``--json``, where the job runs, ``--no-progress`` and the cluster."""
    parser.add_argument(
        "--timeout",
        type=types.setting("timeout", "--timeout"),
        metavar="T",
        help="give up if the job has not finished after T (90, 5m, 2h)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    add_where(parser)
    parser.add_argument("--no-progress", action="store_true", help="no live progress bar")
    add_cluster(parser)


def add_param(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--param",
        type=types.param,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a model parameter (repeat for several)",
    )


def add_replicates(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument("--replicates", type=types.replicates, metavar="R", help=text)


def add_model_job_tail(
    parser: argparse.ArgumentParser, *, what: str, chunk: str, plot: str
) -> None:
    """What ``run`` and ``sensitivity`` end with: ``--seed``, ``--resume`` (of a ``what``
    job), ``--chunk-size`` and ``--plot`` (their help: ``chunk``, ``plot``), then
    :func:`add_job_options`."""
    parser.add_argument(
        "--seed", type=types.seed, metavar="S", help="job seed (default: random, printed)"
    )
    parser.add_argument(
        "--resume",
        metavar="JOB",
        help=f"finish {what} job JOB (see `mcpi-hub jobs`) where it ran, recomputing nothing",
    )
    parser.add_argument("--chunk-size", type=types.sample_chunk_size, metavar="C", help=chunk)
    parser.add_argument("--plot", metavar="FILE.png", help=plot)
    add_job_options(parser)


def check_job_options(args: argparse.Namespace, view: View) -> None:
    """Options that contradict each other, refused in one line before anything runs."""
    flags = {"size": view.size_flag, "bound": view.bound_flag}
    if args.resume is not None:
        given = [
            flags.get(flag, flag)
            for flag, dest in JOB_DEFINING
            if getattr(args, dest, None) not in (None, False, [])
        ]
        if given:
            raise UsageError(f"--resume finishes a job as it was started: drop {', '.join(given)}")
        return
    if getattr(args, "model", "") is None:
        raise UsageError("name a model to run (see `mcpi-hub models`)")
    names = [name for name, _ in getattr(args, "param", [])]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UsageError(f"--param {repeated[0]} is given more than once")
    if args.precision is not None and args.samples is not None:
        raise UsageError(
            f"give {view.size_flag} or --precision, not both (bound --precision with "
            f"{view.bound_flag})"
        )
    if getattr(args, "sweep", None) and args.plot is not None:
        raise UsageError("--plot draws one job: drop it from a --sweep (use --json for the rows)")
    if args.max_samples is not None and args.precision is None:
        raise UsageError(
            f"{view.bound_flag} bounds --precision; for a fixed number use {view.size_flag}"
        )
    if (
        getattr(args, "output", None) is not None
        and args.precision is None
        and not view.sensitivity
    ):
        raise UsageError("--output names the output --precision applies to")
    if getattr(args, "replicates", None) is not None and getattr(args, "sampler", None) == "mc":
        raise UsageError(
            "--replicates counts randomized QMC's replicates: drop it with --sampler mc"
        )


def job_request(
    args: argparse.Namespace,
    view: View,
    model: str | None = None,
    params: Mapping[str, str] | None = None,
    sampler: str | None = None,
) -> JobRequest:
    """The request ``args`` make (checked first), of ``model`` (default: the MODEL given)
    with ``params`` (default: the ``--param`` given), drawn by ``sampler`` (default: the
    ``--sampler`` given, else the view's)."""
    return JobRequest.asked(
        model or getattr(args, "model", None) or "",
        view,
        params=dict(getattr(args, "param", []) if params is None else params),
        samples=args.samples,
        precision=args.precision,
        output=getattr(args, "output", None),
        max_samples=args.max_samples,
        seed=args.seed,
        chunk_size=args.chunk_size,
        local=args.local,
        processes=args.processes,
        resume=args.resume,
        sampler=sampler or getattr(args, "sampler", None),
        replicates=getattr(args, "replicates", None),
        histograms=tuple(getattr(args, "hist", [])),
        quantiles=tuple(getattr(args, "quantile", [])),
        exceed=tuple(getattr(args, "exceed", [])),
        control=getattr(args, "control", None),
        antithetic=getattr(args, "antithetic", False),
        refine=getattr(args, "refine", False),
    )


def run_job(
    args: argparse.Namespace,
    env: Mapping[str, str],
    stdout: TextIO,
    stderr: TextIO,
    request: JobRequest,
) -> int:
    """Run the job ``request`` describes and write its report; the exit status.

    The plot's path is checked, and the settings read, before anything runs.
    """
    from mcpi.cli.progress import ProgressBar
    from mcpi.cli.report import as_json, as_text
    from mcpi.hub import run
    from mcpi.hub.progress import NoProgress, Progress

    plot_path = None
    if args.plot is not None:
        from mcpi.cli.plot import check_plot_path

        plot_path = check_plot_path(args.plot)
    settings = cluster_settings(args, env, timeout=args.timeout)
    show_progress = not (args.json or args.no_progress) and stderr.isatty()
    unit = request.view.unit
    progress: Progress = ProgressBar(stderr, unit=unit) if show_progress else NoProgress()
    report = run.run_job(request, settings, progress)
    stdout.write(json.dumps(as_json(report)) + "\n" if args.json else as_text(report))
    if plot_path is not None:
        from mcpi.cli.plot import plot_job

        plot_job(report, plot_path)
        if not args.json:
            stdout.write(f"plot: {plot_path}\n")
    return ExitStatus.OK if report.precision_reached else ExitStatus.PRECISION_NOT_REACHED
