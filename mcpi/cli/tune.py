"""``mcpi-hub tune``: measure the workers and show how a job of N darts would be chunked."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any, TextIO

from mcpi.cli import types
from mcpi.cli.estimate import DEFAULT_DARTS
from mcpi.cli.options import add_cluster, add_where, cluster_settings
from mcpi.errors import ExitStatus


def add_parser(commands: Any) -> None:
    tune = commands.add_parser(
        "tune",
        help="measure the workers and show how a job would be chunked",
        description=(
            "Calibrate the workers (each host's kernel rate per slot and the overhead of "
            "one task), remember the result for later jobs, and show the chunking that "
            "automatic sizing would choose for N darts, with the reasons."
        ),
    )
    tune.add_argument(
        "-n",
        "--darts",
        type=types.darts,
        default=DEFAULT_DARTS,
        metavar="N",
        help=f"job size to plan for (default {DEFAULT_DARTS:.0e})",
    )
    tune.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    add_where(tune)
    add_cluster(tune)


def run(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO, stderr: TextIO) -> int:
    from mcpi.cli.render import tune_as_json, tune_as_text
    from mcpi.hub.request import JobRequest
    from mcpi.hub.run import run_tune

    request = JobRequest("pi", samples=args.darts, local=args.local, processes=args.processes)
    report = run_tune(request, cluster_settings(args, env))
    if args.json:
        stdout.write(json.dumps(tune_as_json(report)) + "\n")
    else:
        stdout.write(tune_as_text(report))
    return ExitStatus.OK
