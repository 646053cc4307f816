"""``mcpi-hub status``: the broker, the backend, the queue and every worker, by host."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any, TextIO

from mcpi.cli.options import add_cluster, cluster_settings
from mcpi.errors import ExitStatus, UsageError


def add_parser(commands: Any) -> None:
    status = commands.add_parser(
        "status",
        help="show the broker, the backend, the queue and every worker, by host",
        description=(
            "Ask the broker (version; the mcpi queue's waiting messages and consumers, by "
            "a passive declare), the result backend (version) and every worker (versions, "
            "slots, load, chunks running and prefetched). Warns when a worker runs another "
            "mcpi version than this hub (exit 8 with --strict)."
        ),
    )
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.add_argument(
        "--strict", action="store_true", help="exit 8 if any worker's mcpi version differs"
    )
    add_cluster(status)


def run(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO, stderr: TextIO) -> int:
    from mcpi.cli.render import status_as_text
    from mcpi.ops.snapshot import status_as_json
    from mcpi.ops.status import gather

    settings = cluster_settings(args, env)
    if not settings.cluster_configured:
        raise UsageError(
            "no cluster configured: status needs a broker (--broker, MCPI_BROKER_URL or "
            "the config file the playbook writes)"
        )
    status = gather(settings)
    if args.json:
        stdout.write(json.dumps(status_as_json(status)) + "\n")
    else:
        stdout.write(status_as_text(status))
    if not (status.broker.reachable and status.backend.reachable):
        return ExitStatus.UNREACHABLE
    if not status.workers:
        return ExitStatus.NO_WORKERS
    if args.strict and status.skew:
        return ExitStatus.VERSION_SKEW
    return ExitStatus.OK
