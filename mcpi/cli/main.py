"""``mcpi-hub``: a thin command line over the hub that returns exit statuses.

:func:`main` takes its arguments, environment and streams as parameters (tests swap
them) and returns an :class:`~mcpi.errors.ExitStatus`; every error is one line on
stderr, never a traceback (``MCPI_DEBUG=1`` shows the traceback of an unexpected one;
``MCPI_DEBUG=2`` that of an expected one too, with the error behind it).
Each subcommand is a module of this package with ``add_parser`` and ``run``; the
table below is the whole dispatch.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping, Sequence
from types import ModuleType
from typing import NoReturn, TextIO

from mcpi import __version__
from mcpi.cli import (
    bench,
    dashboard,
    estimate,
    hosts,
    jobs,
    models,
    run,
    sensitivity,
    status,
    tune,
)
from mcpi.cli.options import PROG, Parser
from mcpi.errors import ExitStatus, McpiError
from mcpi.settings import ConfigError, default_config_path

#: Subcommands, in the order ``--help`` lists them.
COMMANDS: dict[str, ModuleType] = {
    "estimate": estimate,
    "run": run,
    "sensitivity": sensitivity,
    "models": models,
    "tune": tune,
    "status": status,
    "jobs": jobs,
    "dashboard": dashboard,
    "hosts": hosts,
    "bench": bench,
}


def build_parser(env: Mapping[str, str]) -> Parser:
    parser = Parser(
        prog=PROG,
        description=(
            "Estimate π, or run your own Monte Carlo models, on an mcpi cluster or on this machine."
        ),
        epilog=f"Config file: {default_config_path(env)} (or MCPI_CONFIG / --config).",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for command in COMMANDS.values():
        command.add_parser(commands)
    return parser


def reference_parser() -> Parser:
    """The parser as the command reference documents it (the config file's default path
    shown under ``~``)."""
    return build_parser({"HOME": "~"})


def main(
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run ``mcpi-hub`` with ``argv``; return the exit status."""
    env = os.environ if env is None else env
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        parser = build_parser(env)
        try:
            args = parser.parse_args(argv)
        except SystemExit as done:  # --help and --version print and "exit"
            return int(done.code or 0)
        command = COMMANDS.get(args.command or "")
        if command is None:
            parser.print_usage(stderr)
            stderr.write(f"{PROG}: error: a command is required (see {PROG} --help)\n")
            return ExitStatus.USAGE
        with messages_to(stderr):
            return int(command.run(args, env, stdout, stderr))
    except McpiError as exc:
        if env.get("MCPI_DEBUG") == "2":
            _trace(stderr, exc)
        return _fail(stderr, exc.status, str(exc))
    except ConfigError as exc:
        return _fail(stderr, ExitStatus.CONFIG, str(exc))
    except KeyboardInterrupt:
        return _fail(stderr, ExitStatus.INTERRUPTED, "interrupted")
    except Exception as exc:
        if env.get("MCPI_DEBUG"):
            raise
        return _fail(
            stderr,
            ExitStatus.ERROR,
            f"unexpected {type(exc).__name__}: {exc} (a bug: MCPI_DEBUG=1 shows the traceback)",
        )


@contextlib.contextmanager
def messages_to(stderr: TextIO) -> Iterator[None]:
    """Show the hub's messages while it works (say, what it waits for) on ``stderr``.

    Only this thread's: tests run several commands at once, each with its own stream.
    """
    handler = logging.StreamHandler(stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
    thread = threading.get_ident()
    handler.addFilter(lambda record: record.thread == thread)
    logger = logging.getLogger("mcpi")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def _trace(stderr: TextIO, exc: BaseException) -> None:
    """Where an expected error was raised, and the error it stands for: hidden from
    users (``from None``), shown for finding which call a fault reached."""
    behind = exc.__cause__ or exc.__context__
    if behind is not None:
        stderr.write("".join(traceback.format_exception(behind)))
    # Not chained: what is behind it was written just above.
    stderr.write("".join(traceback.format_exception(exc, chain=False)))


def _fail(stderr: TextIO, status: ExitStatus, message: str) -> int:
    stderr.write(f"{PROG}: error: {' '.join(message.split())}\n")
    return status


def entry_point() -> NoReturn:
    """The ``mcpi-hub`` console script."""
    sys.exit(main())
