"""What ``estimate`` and ``run`` share: a job's common options, and running it to a report."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TextIO

from mcpi.cli import types
from mcpi.cli.options import add_cluster, add_where, cluster_settings
from mcpi.errors import ExitStatus

if TYPE_CHECKING:
    from pathlib import Path

    from mcpi.hub.report import JobReport
    from mcpi.hub.request import EstimateRequest


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


def run_job(
    args: argparse.Namespace,
    env: Mapping[str, str],
    stdout: TextIO,
    stderr: TextIO,
    request: Callable[[], EstimateRequest],
    text: Callable[[JobReport], str],
    as_json: Callable[[JobReport], dict[str, Any]],
    plot: Callable[[JobReport, Path], None],
    unit: str,
) -> int:
    """Run the job ``request()`` describes and write its report; the exit status.

    The plot's path is checked, and the settings read, before anything runs.
    """
    from mcpi.cli.progress import ProgressBar
    from mcpi.hub.progress import NoProgress, Progress
    from mcpi.hub.run import run_estimate

    plot_path = None
    if args.plot is not None:
        from mcpi.cli.plot import check_plot_path

        plot_path = check_plot_path(args.plot)
    settings = cluster_settings(args, env, timeout=args.timeout)
    show_progress = not (args.json or args.no_progress) and stderr.isatty()
    progress: Progress = ProgressBar(stderr, unit=unit) if show_progress else NoProgress()
    report = run_estimate(request(), settings, progress)
    stdout.write(json.dumps(as_json(report)) + "\n" if args.json else text(report))
    if plot_path is not None:
        plot(report, plot_path)
        if not args.json:
            stdout.write(f"plot: {plot_path}\n")
    return ExitStatus.OK if report.precision_reached else ExitStatus.PRECISION_NOT_REACHED
