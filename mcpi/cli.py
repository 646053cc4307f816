"""``mcpi-hub``: a thin command line over :mod:`mcpi.hub` that returns exit statuses.

:func:`main` takes its arguments, environment and streams as parameters (tests swap
them) and returns an :class:`~mcpi.errors.ExitStatus`; every error is one line on
stderr, never a traceback (``MCPI_DEBUG=1`` shows the traceback of an unexpected one).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn, TextIO

from mcpi import __version__
from mcpi.errors import ExitStatus, McpiError, UsageError
from mcpi.kernel import MAX_SEED
from mcpi.plan import MAX_CHUNK_DARTS, MAX_DARTS
from mcpi.settings import PARSERS as SETTING_PARSERS
from mcpi.settings import ConfigError, default_config_path, load_settings

PROG = "mcpi-hub"
DEFAULT_DARTS = 10**8
#: The default bound of a precision-targeted job: about an hour of 2 x 10^8 darts/s.
DEFAULT_MAX_DARTS = 10**12


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def parse_count(text: str, what: str, maximum: int) -> int:
    """A positive whole number, written ``100000000``, ``1e8``, ``1_000_000`` or ``2.5e9``."""
    try:
        value = Decimal(text.strip().replace("_", "").replace(",", ""))
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of {what}") from None
    if not value.is_finite() or value != value.to_integral_value():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of {what}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"the number of {what} must be at least 1, not {text}")
    if value > maximum:
        raise argparse.ArgumentTypeError(f"{text} {what} is more than the maximum of {maximum:.3g}")
    return int(value)


def _darts(text: str) -> int:
    return parse_count(text, "darts", MAX_DARTS)


def _chunk_size(text: str) -> int:
    return parse_count(text, "darts per chunk", MAX_CHUNK_DARTS)


def _processes(text: str) -> int:
    return parse_count(text, "processes", 4096)


def _sizes(text: str) -> list[int]:
    sizes = [_darts(part) for part in text.split(",") if part.strip()]
    if not sizes:
        raise argparse.ArgumentTypeError("expected job sizes such as 1e8,1e9")
    if max(sizes) > 10**12:
        raise argparse.ArgumentTypeError("a benchmark size is at most 1e12 darts")
    return sizes


def _jobs_limit(text: str) -> int:
    return parse_count(text, "jobs", 10**6)


def _precision(text: str) -> float:
    try:
        value = float(text.strip().replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and 0 < value < 4):
        raise argparse.ArgumentTypeError(
            f"a precision is the interval's half-width, between 0 and 4 (e.g. 1e-5), not {text}"
        )
    return value


def _seed(text: str) -> int:
    try:
        value = int(text.strip(), 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"a seed is between 0 and 2**128-1, not {text}")
    return value


def _setting(name: str, flag: str) -> Callable[[str], Any]:
    parse = SETTING_PARSERS[name]

    def convert(text: str) -> Any:
        try:
            return parse(text, flag)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix(f"{flag}: ")) from None

    return convert


def build_parser(env: Mapping[str, str]) -> _Parser:
    parser = _Parser(
        prog=PROG,
        description="Estimate π by Monte Carlo on an mcpi cluster, or on this machine.",
        epilog=f"Config file: {default_config_path(env)} (or MCPI_CONFIG / --config).",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    est = commands.add_parser(
        "estimate",
        help="throw darts and report π with its confidence interval",
        description=(
            "Throw N darts (split into chunks, counted by the cluster's workers as one "
            "Celery chord per wave) and report π, its 95%% confidence interval and the "
            "throughput per host. With no cluster configured, runs on a local process "
            "pool and gives the same count for the same seed."
        ),
    )
    est.add_argument(
        "-n",
        "--darts",
        type=_darts,
        metavar="N",
        help=f"number of darts, e.g. 1e9 (default {DEFAULT_DARTS:.0e}, maximum {MAX_DARTS:.0e})",
    )
    est.add_argument(
        "--precision",
        type=_precision,
        metavar="H",
        help=(
            "instead of N darts: throw darts until the 95%% interval's half-width is at "
            "most H, e.g. 1e-5 (sequential rule of Chow and Robbins, see the README)"
        ),
    )
    est.add_argument(
        "--max-darts",
        type=_darts,
        metavar="M",
        help=f"with --precision: stop at M darts at most (default {DEFAULT_MAX_DARTS:.0e})",
    )
    est.add_argument(
        "--seed", type=_seed, metavar="S", help="job seed (default: random, printed in the report)"
    )
    est.add_argument(
        "--resume",
        metavar="JOB",
        help="finish job JOB (see `mcpi-hub jobs`) where it ran, recounting nothing counted",
    )
    est.add_argument(
        "--plot",
        metavar="FILE.png",
        help="draw the running estimate with its band, and darts/s per host (needs matplotlib)",
    )
    est.add_argument(
        "--chunk-size",
        type=_chunk_size,
        metavar="C",
        help="darts per chunk (default: chosen from the workers' measured rates; see tune)",
    )
    est.add_argument(
        "--timeout",
        type=_setting("timeout", "--timeout"),
        metavar="T",
        help="give up if the job has not finished after T (90, 5m, 2h)",
    )
    est.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    _add_where(est)
    est.add_argument("--no-progress", action="store_true", help="no live progress bar")
    _add_cluster(est)

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
        type=_darts,
        default=DEFAULT_DARTS,
        metavar="N",
        help=f"job size to plan for (default {DEFAULT_DARTS:.0e})",
    )
    tune.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    _add_where(tune)
    _add_cluster(tune)

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
    _add_cluster(status)

    jobs = commands.add_parser(
        "jobs",
        help="list recent jobs (to resume an unfinished one)",
        description="List the jobs this hub recorded, newest first (in MCPI_CACHE_DIR/jobs).",
    )
    jobs.add_argument(
        "-n", "--limit", type=_jobs_limit, default=20, metavar="K", help="show K jobs (default 20)"
    )
    jobs.add_argument("--json", action="store_true", help="print one JSON array")
    jobs.add_argument("--config", metavar="FILE", help="config file (MCPI_CONFIG)")

    _add_hosts(commands)

    bench = commands.add_parser(
        "bench",
        help="measure mcpi against multiprocessing.Pool, Dask and raw RNG on this machine",
        description=(
            "Run the same darts through the seed's loops, the mcpi kernel and raw PCG64 on "
            "one core, and through multiprocessing.Pool, Dask LocalCluster, mcpi's local "
            "pool and mcpi over Celery (private local RabbitMQ and Redis) on P processes; "
            "print darts/s with ratios to the Pool and to the limit (P x raw PCG64), and "
            "plot rate against job size. Peers: pip install 'mcpi[bench]'."
        ),
    )
    bench.add_argument(
        "--sizes",
        type=_sizes,
        metavar="N,N,...",
        help="job sizes (default 1e8,1e9,1e10; the table shows the largest)",
    )
    bench.add_argument(
        "--quick", action="store_true", help="sizes 1e7,1e8 and less hub-memory work"
    )
    bench.add_argument(
        "--processes", type=_processes, metavar="P", help="processes / slots (default: all cores)"
    )
    bench.add_argument(
        "--plot", metavar="FILE.png", default="mcpi-bench.png", help="plot (default %(default)s)"
    )
    bench.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return parser


def _add_hosts(commands: Any) -> None:
    hosts = commands.add_parser(
        "hosts",
        help="operate the inventory's hosts over SSH (state, logs, restart, run, drain)",
        description=(
            "Ad hoc operations over the cluster's Ansible inventory (the one the playbook "
            "deployed from: MCPI_INVENTORY, the config file, or -i), with Fabric: in "
            "parallel, with each host's result; exit 9 if any host failed."
        ),
    )
    actions = hosts.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    helps = {
        "list": "the inventory's hosts, addresses and groups (no SSH)",
        "state": "each worker unit's state",
        "logs": "the tail of each worker's journal",
        "restart": "restart the workers one host at a time, each back before the next",
        "run": "run a shell command on every host",
        "drain": "stop and disable the workers of --on hosts (warm shutdown: no chunk lost)",
    }
    for action, text in helps.items():
        sub = actions.add_parser(action, help=text, description=text[0].upper() + text[1:] + ".")
        sub.add_argument("-i", "--inventory", metavar="PATH", help="Ansible inventory")
        sub.add_argument(
            "--on", type=_host_names, metavar="H1,H2", help="only these hosts (inventory names)"
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
                type=_lines,
                default=20,
                metavar="L",
                help="journal lines per host (default 20)",
            )
        if action == "run":
            sub.add_argument("remote", nargs=argparse.REMAINDER, metavar="COMMAND ...")
        if action == "restart":
            _add_cluster(sub)
        else:
            sub.add_argument("--config", metavar="FILE", help="config file (MCPI_CONFIG)")


def _host_names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected host names such as h1,h2")
    return names


def _lines(text: str) -> int:
    return parse_count(text, "lines", 100_000)


def _add_where(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--local",
        action="store_true",
        help="run on a local process pool even if a cluster is configured",
    )
    parser.add_argument(
        "--processes", type=_processes, metavar="P", help="local pool size (default: all cores)"
    )


def _add_cluster(parser: argparse.ArgumentParser) -> None:
    cluster = parser.add_argument_group("cluster (default: environment, then config file)")
    cluster.add_argument(
        "--broker",
        type=_setting("broker_url", "--broker"),
        metavar="URL",
        help="broker URL (MCPI_BROKER_URL), amqp://user:pass@host:5672/vhost",
    )
    cluster.add_argument(
        "--backend",
        type=_setting("result_backend", "--backend"),
        metavar="URL",
        help="result backend URL (MCPI_RESULT_BACKEND), redis://user:pass@host:6379/0",
    )
    cluster.add_argument("--config", metavar="FILE", help="config file (MCPI_CONFIG)")


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
        if args.command == "estimate":
            return _estimate(args, env, stdout, stderr)
        if args.command == "tune":
            return _tune(args, env, stdout)
        if args.command == "status":
            return _status(args, env, stdout)
        if args.command == "jobs":
            return _jobs(args, env, stdout)
        if args.command == "hosts":
            return _hosts(args, env, stdout, stderr)
        if args.command == "bench":
            return _bench(args, stdout, stderr)
        parser.print_usage(stderr)
        stderr.write(f"{PROG}: error: a command is required (see {PROG} --help)\n")
        return ExitStatus.USAGE
    except McpiError as exc:
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


def _estimate(
    args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO, stderr: TextIO
) -> int:
    from mcpi.hub import EstimateRequest, run_estimate
    from mcpi.precision import PrecisionTarget
    from mcpi.progress import NoProgress, Progress, ProgressBar
    from mcpi.report import as_json, as_text

    _check_estimate_options(args)
    plot = None
    if args.plot is not None:
        from mcpi.plot import check_plot_path

        plot = check_plot_path(args.plot)
    settings = _settings(args, env, timeout=args.timeout)
    precision = None
    if args.precision is not None:
        precision = PrecisionTarget(args.precision, args.max_darts or DEFAULT_MAX_DARTS)
    request = EstimateRequest(
        darts=args.darts or DEFAULT_DARTS,
        seed=args.seed,
        chunk_size=args.chunk_size,
        local=args.local,
        processes=args.processes,
        precision=precision,
        resume=args.resume,
    )
    show_progress = not (args.json or args.no_progress) and stderr.isatty()
    progress: Progress = ProgressBar(stderr) if show_progress else NoProgress()
    report = run_estimate(request, settings, progress)
    if args.json:
        stdout.write(json.dumps(as_json(report)) + "\n")
    else:
        stdout.write(as_text(report))
    if plot is not None:
        from mcpi.plot import plot_job

        plot_job(report, plot)
        if not args.json:
            stdout.write(f"plot: {plot}\n")
    return ExitStatus.OK if report.precision_reached else ExitStatus.PRECISION_NOT_REACHED


def _check_estimate_options(args: argparse.Namespace) -> None:
    if args.resume is not None:
        given = [
            flag
            for flag, value in (
                ("--darts", args.darts),
                ("--seed", args.seed),
                ("--chunk-size", args.chunk_size),
                ("--precision", args.precision),
                ("--max-darts", args.max_darts),
                ("--local", args.local or None),
            )
            if value is not None
        ]
        if given:
            raise UsageError(f"--resume finishes a job as it was started: drop {', '.join(given)}")
    if args.precision is not None and args.darts is not None:
        raise UsageError(
            "give --darts or --precision, not both (bound --precision with --max-darts)"
        )
    if args.max_darts is not None and args.precision is None:
        raise UsageError("--max-darts bounds --precision; for a fixed number use --darts")


def _status(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO) -> int:
    from mcpi.report import status_as_json, status_as_text
    from mcpi.status import gather

    settings = _settings(args, env)
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


def _jobs(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO) -> int:
    from mcpi.records import JobBook
    from mcpi.report import jobs_as_json, jobs_as_text

    settings = load_settings({"config": args.config}, env)
    book = JobBook(settings.cache_dir / "jobs" if settings.cache_dir else None)
    records = book.recent(args.limit)
    if args.json:
        stdout.write(json.dumps(jobs_as_json(records)) + "\n")
    else:
        stdout.write(jobs_as_text(records))
    return ExitStatus.OK


def _tune(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO) -> int:
    from mcpi.hub import EstimateRequest, run_tune
    from mcpi.report import tune_as_json, tune_as_text

    request = EstimateRequest(darts=args.darts, local=args.local, processes=args.processes)
    report = run_tune(request, _settings(args, env))
    if args.json:
        stdout.write(json.dumps(tune_as_json(report)) + "\n")
    else:
        stdout.write(tune_as_text(report))
    return ExitStatus.OK


def _hosts(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO, stderr: TextIO) -> int:
    from mcpi import ops
    from mcpi.inventory import InventoryError, load_inventory, select
    from mcpi.report import hosts_as_json, hosts_as_text

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


def _worker_answers(settings: Any) -> Callable[[str], bool] | None:
    """With a cluster configured: whether a worker on a given host answers a ping."""
    if not settings.cluster_configured:
        return None
    from mcpi.cluster import Cluster

    cluster = Cluster(settings)
    return lambda hostname: any(n.endswith("@" + hostname) for n in cluster.worker_nodes())


def _bench(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from pathlib import Path

    from mcpi import bench

    if args.plot and not args.plot.endswith(".png"):
        raise UsageError(f"the plot is a PNG file: {args.plot!r} does not end in .png")
    sizes = args.sizes or (bench.QUICK_SIZES if args.quick else bench.DEFAULT_SIZES)
    report = bench.run_bench(
        sizes,
        processes=args.processes or os.cpu_count() or 1,
        plot=Path(args.plot) if args.plot else None,
        rss_sizes=(10**9, 10**16) if args.quick else bench.RSS_SIZES,
        say=lambda message: print(f"{PROG} bench: {message}", file=stderr, flush=True),
    )
    if args.json:
        stdout.write(json.dumps(bench.as_json(report)) + "\n")
    else:
        stdout.write(bench.as_text(report))
    return ExitStatus.OK


def _settings(args: argparse.Namespace, env: Mapping[str, str], **flags: Any) -> Any:
    return load_settings(
        {"broker_url": args.broker, "result_backend": args.backend, "config": args.config} | flags,
        env,
    )


def _fail(stderr: TextIO, status: ExitStatus, message: str) -> int:
    stderr.write(f"{PROG}: error: {' '.join(message.split())}\n")
    return status


def entry_point() -> NoReturn:
    """The ``mcpi-hub`` console script."""
    sys.exit(main())
