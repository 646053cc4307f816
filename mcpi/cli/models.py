"""``mcpi-hub models``: the models this hub can run, and which workers have each one."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any, TextIO

from mcpi.cli.options import add_cluster, cluster_settings
from mcpi.errors import ExitStatus


def add_parser(commands: Any) -> None:
    models = commands.add_parser(
        "models",
        help="list the models this hub can run (and, on a cluster, which workers have them)",
        description=(
            "List the installed models (mcpi's built-ins and every package registering "
            "the mcpi.models entry point): outputs, parameters, exact answers, version "
            "and code digest. With a cluster configured, also which workers have each "
            "model and in which version."
        ),
    )
    models.add_argument("--json", action="store_true", help="print JSON instead of text")
    models.add_argument(
        "--local", action="store_true", help="this hub's models only; do not ask the cluster"
    )
    add_cluster(models)


def run(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO, stderr: TextIO) -> int:
    from mcpi import models as registry
    from mcpi.cli.render import models_as_json, models_as_text

    settings = cluster_settings(args, env)
    workers: dict[str, dict[str, Any]] | None = None
    if settings.cluster_configured and not args.local:
        from mcpi.cluster.client import ClusterClient

        client = ClusterClient(settings)
        try:
            client.check_broker()
            workers = client.worker_info()
        finally:
            client.close()
    installed, broken = registry.installed(), registry.broken()
    if args.json:
        stdout.write(json.dumps(models_as_json(installed, broken, workers)) + "\n")
    else:
        stdout.write(models_as_text(installed, broken, workers))
    return ExitStatus.OK
