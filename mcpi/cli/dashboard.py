"""``mcpi-hub dashboard``: a live, read-only page of this control node's jobs."""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from mcpi.cli import types
from mcpi.cli.options import add_cluster, cluster_settings
from mcpi.errors import ExitStatus, UsageError


def add_parser(commands: Any) -> None:
    from mcpi.dashboard.server import DEFAULT_PORT, LOOPBACK

    dashboard = commands.add_parser(
        "dashboard",
        help="serve a live, read-only web page of the jobs run from this control node",
        description=(
            "Serve a live page of the jobs that every hub process on this control node "
            "runs or ran (the CLI, the API, sweeps): each running job's estimate "
            "converging in its 95%% band, its progress and its hosts' rates, and the "
            "recent jobs with their results; and the cluster, as `status` shows it, every "
            "5 s (hosts up or gone). Jobs are read from the job book (MCPI_CACHE_DIR/jobs): "
            "watching a job costs its hub nothing. On 127.0.0.1 by default, behind a "
            "token printed at start; needs the dashboard extra (pip install "
            "'mcpi[dashboard]')."
        ),
    )
    dashboard.add_argument(
        "--port",
        type=types.port,
        default=DEFAULT_PORT,
        help=f"port to listen on (default {DEFAULT_PORT}; taken: refused, not moved)",
    )
    dashboard.add_argument(
        "--bind",
        default=LOOPBACK,
        metavar="ADDR",
        help=f"address to listen on (default {LOOPBACK}; another needs TLS or "
        "--insecure-plain-http)",
    )
    dashboard.add_argument(
        "--page-cert", type=Path, metavar="FILE", help="serve over TLS: certificate"
    )
    dashboard.add_argument("--page-key", type=Path, metavar="FILE", help="serve over TLS: its key")
    dashboard.add_argument(
        "--insecure-plain-http",
        action="store_true",
        help="allow --bind to a network address without TLS: the page and its token are "
        "then readable by anyone on that network",
    )
    add_cluster(dashboard)


def run(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO, stderr: TextIO) -> int:
    missing = [m for m in ("starlette", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(
            f"the dashboard needs {' and '.join(missing)}: pip install 'mcpi[dashboard]'"
        )
    from mcpi.dashboard.app import create_app
    from mcpi.dashboard.cluster import ClusterWatch
    from mcpi.dashboard.server import address, new_token, serve
    from mcpi.dashboard.watch import Watcher
    from mcpi.hub.records import JobBook

    settings = cluster_settings(args, env)
    book = JobBook.of(settings)
    if book.directory is None:
        raise UsageError("no cache directory (MCPI_CACHE_DIR): there is no job book to show")
    where = address(args.bind, args.port, args.page_cert, args.page_key, args.insecure_plain_http)
    token = new_token()
    jobs, cluster = Watcher(book), ClusterWatch(settings)

    def snapshot() -> dict[str, Any]:
        return jobs.snapshot() | {"cluster": cluster.look()}

    app = create_app(snapshot, token, where.hosts())

    def say(line: str) -> None:
        stdout.write(line + "\n")
        stdout.flush()

    serve(where, app, say, token)
    return ExitStatus.OK
