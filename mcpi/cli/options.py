"""What every subcommand shares: the parser class, option groups, the settings they give."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any, NoReturn

from mcpi.cli import types
from mcpi.errors import UsageError
from mcpi.settings import Settings, load_settings

PROG = "mcpi-hub"


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def add_where(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--local",
        action="store_true",
        help="run on a local process pool even if a cluster is configured",
    )
    parser.add_argument(
        "--processes",
        type=types.processes,
        metavar="P",
        help="local pool size (default: all cores)",
    )


def add_cluster(parser: argparse.ArgumentParser) -> None:
    cluster = parser.add_argument_group("cluster (default: environment, then config file)")
    cluster.add_argument(
        "--broker",
        type=types.setting("broker_url", "--broker"),
        metavar="URL",
        help="broker URL (MCPI_BROKER_URL): amqps://user:pass@host:5671/vhost, amqp:// in clear",
    )
    cluster.add_argument(
        "--backend",
        type=types.setting("result_backend", "--backend"),
        metavar="URL",
        help="result backend URL (MCPI_RESULT_BACKEND): rediss://user:pass@host:6380/0",
    )
    cluster.add_argument(
        "--tls-ca",
        type=types.setting("tls_ca", "--tls-ca"),
        metavar="FILE",
        help="the cluster's CA certificate, which TLS servers must be signed by (MCPI_TLS_CA)",
    )
    for name, what in (("cert", "certificate"), ("key", "certificate's key")):
        cluster.add_argument(
            f"--tls-{name}",
            type=types.setting(f"tls_{name}", f"--tls-{name}"),
            metavar="FILE",
            help=f"a client {what}, for mutual TLS (MCPI_TLS_{name.upper()})",
        )
    add_config(cluster)


def add_config(parser: Any) -> None:
    parser.add_argument("--config", metavar="FILE", help="config file (MCPI_CONFIG)")


def cluster_settings(args: argparse.Namespace, env: Mapping[str, str], **flags: Any) -> Settings:
    """The settings of a subcommand with :func:`add_cluster`'s options (and ``flags``)."""
    return load_settings(
        {
            "broker_url": args.broker,
            "result_backend": args.backend,
            "tls_ca": args.tls_ca,
            "tls_cert": args.tls_cert,
            "tls_key": args.tls_key,
            "config": args.config,
        }
        | flags,
        env,
    )
