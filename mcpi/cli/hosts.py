"""``mcpi-hub hosts``: ad hoc operations over the cluster's Ansible inventory, with Fabric."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from mcpi.cli import types
from mcpi.cli.options import PROG, Parser, add_cluster, add_config
from mcpi.errors import ExitStatus, UsageError
from mcpi.settings import Settings, load_settings

ACTIONS = {
    "list": "the inventory's hosts, addresses and groups (no SSH)",
    "state": "each worker unit's state",
    "logs": "the tail of each worker's journal",
    "restart": "restart the workers one host at a time, each back before the next",
    "run": "run a shell command on every host",
    "drain": "stop and disable the workers of --on hosts (warm shutdown: no chunk lost)",
}


def add_parser(commands: Any) -> None:
    hosts = commands.add_parser(
        "hosts",
        help="operate the inventory's hosts over SSH (state, logs, restart, run, drain)",
        description=(
            "Ad hoc operations over the cluster's Ansible inventory (the one the playbook "
            "deployed from: MCPI_INVENTORY, the config file, or -i), with Fabric: in "
            "parallel, with each host's result; exit 9 if any host failed."
        ),
    )
    actions = hosts.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)
    for action, text in ACTIONS.items():
        sub = actions.add_parser(action, help=text, description=text[0].upper() + text[1:] + ".")
        sub.add_argument("-i", "--inventory", metavar="PATH", help="Ansible inventory")
        sub.add_argument(
            "--on",
            type=types.host_names,
            metavar="H1,H2",
            help="only these hosts (inventory names)",
        )
        default_group = "all" if action in ("list", "run") else "workers"
        sub.add_argument(
            "--group",
            default=default_group,
            metavar="G",
            help=f"inventory group to act on (default {default_group})",
        )
        sub.add_argument("--json", action="store_true", help="print one JSON object")
        if action == "logs":
            sub.add_argument(
                "-n",
                "--lines",
                type=types.lines,
                default=20,
                metavar="L",
                help="journal lines per host (default 20)",
            )
        if action == "run":
            sub.add_argument("remote", nargs=argparse.REMAINDER, metavar="COMMAND ...")
        if action == "restart":
            add_cluster(sub)
        else:
            add_config(sub)


def run(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO, stderr: TextIO) -> int:
    from mcpi.cli.render import hosts_as_json, hosts_as_text
    from mcpi.ops import hosts as ops
    from mcpi.ops.inventory import InventoryError, load_inventory, select

    if args.action is None:
        raise UsageError("hosts needs an action: list, state, logs, restart, run or drain")
    flags = {"config": args.config, "inventory": args.inventory}
    if args.action == "restart":
        flags |= {"broker_url": args.broker, "result_backend": args.backend}
    settings = load_settings(flags, env)
    if settings.inventory is None:
        raise UsageError(
            "no inventory: give -i PATH, set MCPI_INVENTORY, or deploy with the playbook "
            "(which records it in the hub's config file)"
        )
    try:
        hosts = select(load_inventory(settings.inventory), args.group, args.on)
    except InventoryError as exc:
        raise UsageError(str(exc)) from None

    if args.action == "list":
        results = [
            ops.HostResult(
                h.name, 0, details=(("address", h.address), ("groups", ",".join(h.groups)))
            )
            for h in hosts
        ]
    elif args.action == "state":
        results = ops.unit_state(hosts)
    elif args.action == "logs":
        results = ops.journal_tail(hosts, args.lines)
    elif args.action == "run":
        command = " ".join(args.remote[1:] if args.remote[:1] == ["--"] else args.remote)
        if not command.strip():
            raise UsageError("hosts run needs a command, e.g. mcpi-hub hosts run -- uptime")
        results = ops.run_everywhere(hosts, lambda host: command)
    elif args.action == "drain":
        if not args.on:
            raise UsageError("drain takes the hosts to drain: --on H1,H2")
        results = ops.drain(hosts)
    else:  # restart
        results = ops.rolling_restart(
            hosts,
            _worker_answers(settings),
            say=lambda message: print(f"{PROG} hosts: {message}", file=stderr, flush=True),
        )
    if args.json:
        stdout.write(json.dumps(hosts_as_json(args.action, results)) + "\n")
    else:
        stdout.write(hosts_as_text(args.action, results))
    complete = len(results) == len(hosts)
    return ExitStatus.OK if complete and all(r.ok for r in results) else ExitStatus.HOSTS_FAILED


def _worker_answers(settings: Settings) -> Callable[[str], bool] | None:
    """With a cluster configured: whether a worker on a given host answers a ping."""
    if not settings.cluster_configured:
        return None
    from mcpi.cluster.client import ClusterClient

    client = ClusterClient(settings)
    return lambda hostname: any(n.endswith("@" + hostname) for n in client.worker_nodes())
