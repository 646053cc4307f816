"""``mcpi-hub jobs``: the jobs this hub recorded, newest first (to resume an unfinished one)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any, TextIO

from mcpi.cli import types
from mcpi.cli.options import add_config
from mcpi.errors import ExitStatus
from mcpi.settings import load_settings


def add_parser(commands: Any) -> None:
    jobs = commands.add_parser(
        "jobs",
        help="list recent jobs (to resume an unfinished one)",
        description="List the jobs this hub recorded, newest first (in MCPI_CACHE_DIR/jobs).",
    )
    jobs.add_argument(
        "-n",
        "--limit",
        type=types.jobs_limit,
        default=20,
        metavar="K",
        help="show K jobs (default 20)",
    )
    jobs.add_argument("--json", action="store_true", help="print one JSON array")
    add_config(jobs)


def run(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO, stderr: TextIO) -> int:
    from mcpi.cli.render import jobs_as_json, jobs_as_text
    from mcpi.hub.records import JobBook

    settings = load_settings({"config": args.config}, env)
    book = JobBook.of(settings)
    records = book.recent(args.limit)
    if args.json:
        stdout.write(json.dumps(jobs_as_json(records)) + "\n")
    else:
        stdout.write(jobs_as_text(records))
    return ExitStatus.OK
