"""``mcpi-hub bench``: mcpi against its peers, on this machine, in one run.

Every backend counts the same darts (same sizes, same seed) on the same cores, one
after the other, and is timed from "work submitted" to "count in hand" with its pool
or cluster already running; start-up is reported apart. Ratios are taken against the
``multiprocessing.Pool`` row and against the limit (cores x the PCG64 step rate of one
core: the generator's own limit for any kernel drawing one number per dart), both
measured in the same run, so machine speed cancels out of them. The peers (Pool, Dask,
Ray, ipyparallel) count with the numpy reference kernel, mcpi with its compiled one;
all count the same darts, and every row's hits are checked.

Besides the table: the tasks/s mcpi gets through one broker for 1-dart chunks, its
time to a first result, and the hub's peak RSS for job sizes up to the maximum (the
hub is stopped by its own deadline once the first waves are in flight: memory, not
completion, is measured there).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mcpi.bench import peers, precision, small
from mcpi.core import kernel
from mcpi.core.kernel import count_hits, count_hits_reference, generator_steps

SEED = 2026
#: The seed's slow versions are timed on this many darts and reported as a rate.
SEED_DARTS = 10**6
#: Darts for the single-core rows (raw generation, kernel), best of 3.
CORE_DARTS = 2 * 10**8
DEFAULT_SIZES = (10**8, 10**9, 10**10)
QUICK_SIZES = (10**7, 10**8)
RSS_SIZES = (10**9, 10**11, 10**13, 10**16)
#: Seconds a hub measured for its RSS may run before its own deadline stops it.
RSS_DEADLINE = 8.0

POOL = peers.PoolPeer.name
RAW, STEPS = "raw PCG64", "PCG64 steps"
POOL_AGAIN = POOL + " (again)"
DASK = peers.DaskPeer.name
RAY = peers.RayPeer.name
IPYPARALLEL = peers.IpyparallelPeer.name
MCPI_LOCAL = "mcpi, local pool"
MCPI_CELERY = "mcpi over Celery"
PARALLEL = (POOL, DASK, RAY, IPYPARALLEL, MCPI_LOCAL, MCPI_CELERY)
#: The optional peers: each class, and the module whose absence skips it.
OPTIONAL_PEERS = (
    (peers.DaskPeer, "distributed"),
    (peers.RayPeer, "ray"),
    (peers.IpyparallelPeer, "ipyparallel"),
)
SETTINGS = {
    POOL: peers.PoolPeer.settings,
    DASK: peers.DaskPeer.settings,
    RAY: peers.RayPeer.settings,
    IPYPARALLEL: peers.IpyparallelPeer.settings,
    MCPI_LOCAL: "the embedded default (mcpi-hub estimate --local), automatic chunks",
    MCPI_CELERY: "private RabbitMQ + Redis, 1 polite worker x P slots, automatic chunks",
}


@dataclass(frozen=True)
class Measurement:
    backend: str
    darts: int
    seconds: float
    hits: int | None = None

    @property
    def rate(self) -> float:
        return self.darts / self.seconds


@dataclass
class BenchReport:
    machine: str
    processes: int
    sizes: list[int]
    rows: list[Measurement] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    startup: dict[str, float] = field(default_factory=dict)
    tiny_tasks_per_second: float | None = None
    first_result_seconds: float | None = None
    #: The same Celery cluster in plain TCP: darts/s at the largest size and tasks/s for
    #: 1-dart chunks, against the TLS rows above (what encryption costs).
    plain_rate: float | None = None
    plain_tasks_per_second: float | None = None
    hub_rss_kib: dict[int, int] = field(default_factory=dict)
    small_jobs: small.SmallJobs | None = None
    time_to_precision: precision.TimeToPrecision | None = None
    plot: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def baseline(self) -> float | None:
        """The Pool's rate at the largest size: the mean of its runs before and after."""
        top = max(self.sizes)
        rates = [r for name in (POOL, POOL_AGAIN) if (r := self.rate(name, top))]
        return sum(rates) / len(rates) if rates else None

    def rate(self, backend: str, darts: int | None = None) -> float | None:
        for row in self.rows:
            if row.backend == backend and (darts is None or row.darts == darts):
                return row.rate
        return None

    @property
    def limit(self) -> float | None:
        """Cores x the PCG64 step rate of one core (numpy's raw rate where it is not known)."""
        steps = self.rate(STEPS) or self.rate(RAW)
        return steps * self.processes if steps else None


def run_bench(
    sizes: Sequence[int],
    processes: int,
    plot: Path | None,
    rss_sizes: Sequence[int] = RSS_SIZES,
    say: Callable[[str], None] = lambda _: None,
    quick: bool = False,
) -> BenchReport:
    """Measure every backend at every size (see the module docstring)."""
    report = BenchReport(machine=describe_machine(), processes=processes, sizes=sorted(sizes))
    say(f"single core: the seed's loops on {SEED_DARTS:.0e} darts, raw PCG64 and the kernel")
    report.rows += single_core_rows()
    expected = {n: count_hits(SEED, 0, n) for n in report.sizes}

    def measure(backend: str, count: Callable[[int], tuple[int, float]]) -> None:
        count(min(report.sizes))  # warm up: imports in fresh processes, connections
        for darts in report.sizes:
            say(f"{backend}: {darts:.0e} darts")
            hits, seconds = count(darts)
            if hits != expected[darts]:
                raise RuntimeError(
                    f"{backend} counted {hits} hits of {darts}, not {expected[darts]}"
                )
            report.rows.append(Measurement(backend, darts, seconds, hits))

    with _started(report, POOL, lambda: peers.PoolPeer(processes)) as pool:
        measure(POOL, lambda n: timed(lambda: pool.count(n, SEED)))

    for peer_class, module in OPTIONAL_PEERS:
        name = peer_class.name
        if importlib.util.find_spec(module) is None:
            report.skipped[name] = "not installed: pip install 'mcpi[bench]'"
            continue
        say(f"{name}: starting")
        with (
            peers.environment_restored(),  # Dask's nanny sets MALLOC_TRIM_THRESHOLD_ & co. here
            peers.quiet_dask(),
            _started(report, name, lambda c=peer_class: c(processes)) as peer,  # type: ignore[misc]
        ):
            measure(name, lambda n, p=peer: timed(lambda: p.count(n, SEED)))  # type: ignore[misc]
    if kernel.FALLBACK_REASON:
        report.notes.append(
            f"mcpi counted with the numpy reference kernel: {kernel.FALLBACK_REASON}"
        )

    measure(MCPI_LOCAL, lambda n: _mcpi_job(n, _local_settings(), local=processes))

    with tempfile.TemporaryDirectory(prefix="mcpi-bench-") as tmp:
        try:
            from mcpi.testing.servers import Sandbox

            began = time.monotonic()
            # The worker polite, as deployed workers are by default: the broker, the
            # backend and the hub, sharing its cores here, come first.
            box = Sandbox(Path(tmp), workers=1, concurrency=processes, polite=True)
            box.__enter__()  # closes what it started if it fails
        except (RuntimeError, TimeoutError, OSError) as exc:
            report.skipped[MCPI_CELERY] = f"no local RabbitMQ/Redis: {exc}"
        else:
            try:
                settings = _cluster_settings(box, Path(tmp) / "cache")
                _tune(settings)
                report.startup[MCPI_CELERY] = time.monotonic() - began
                measure(MCPI_CELERY, lambda n: _mcpi_job(n, settings))
                say("overhead: 1-dart chunks through the broker")
                report.tiny_tasks_per_second, report.first_result_seconds = _overhead(settings)
                env = small.cli_env(box.env(), Path(tmp) / "cache")
                report.small_jobs = small.measure_small_jobs(settings, env, processes, quick, say)
                report.time_to_precision = precision.measure(
                    processes, _local_settings(Path(tmp) / "local"), settings, quick, say
                )
                for darts in rss_sizes:
                    say(f"hub memory: {darts:.0e} darts")
                    report.hub_rss_kib[darts] = _hub_rss(box, Path(tmp) / "cache", darts)
                    box.purge()
            finally:
                box.close()
        if report.time_to_precision is None:  # no cluster: the local pool and the peers
            report.time_to_precision = precision.measure(
                processes, _local_settings(Path(tmp) / "local"), None, quick, say
            )
        if MCPI_CELERY not in report.skipped:
            say("TLS off: the same cluster in plain TCP, for what TLS costs")
            _measure_plain(report, Path(tmp) / "plain", processes, expected)

    # The baseline again, at the largest size, after everything else: the ratios use
    # the mean of both runs, and their difference shows how steady the machine was.
    with _started(report, POOL + " (again)", lambda: peers.PoolPeer(processes)) as pool:
        top = max(report.sizes)
        say(f"{POOL} again: {top:.0e} darts")
        hits, seconds = timed(lambda: pool.count(top, SEED))
        report.rows.append(Measurement(POOL_AGAIN, top, seconds, hits))

    if plot is not None:
        try:
            draw(report, plot)
            report.plot = plot
        except ImportError:
            report.notes.append("no plot: matplotlib is not installed (pip install 'mcpi[bench]')")
    return report


def single_core_rows() -> list[Measurement]:
    rows = []
    for name, loop in (
        ("seed: naive loop", peers.seed_naive_loop),
        ("seed: task body", peers.seed_task_body),
    ):
        seconds = min(timed(lambda loop=loop: loop(SEED_DARTS))[1] for _ in range(2))  # type: ignore[misc]
        rows.append(Measurement(name, SEED_DARTS, seconds))
    runs: dict[str, Callable[[], object]] = {
        RAW: lambda: peers.raw_generation(CORE_DARTS),
        "reference kernel": lambda: count_hits_reference(SEED, 0, CORE_DARTS),
        "mcpi kernel": lambda: count_hits(SEED, 0, CORE_DARTS),
    }
    if not kernel.FALLBACK_REASON:
        runs[STEPS] = lambda: generator_steps(SEED, CORE_DARTS)
    count_hits(SEED, 0, 1 << 20)  # warm up
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(3):  # in turn, so that drifts in machine speed hit them all
        for name, run in runs.items():
            best[name] = min(best[name], timed(run)[1])
    rows += [Measurement(name, CORE_DARTS, seconds) for name, seconds in best.items()]
    return rows


def describe_machine() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{model or platform.machine()}, {os.cpu_count()} cores, {platform.system()}, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )


def timed(run: Callable[[], Any]) -> tuple[Any, float]:
    began = time.perf_counter()
    value = run()
    return value, time.perf_counter() - began


@contextlib.contextmanager
def _started(report: BenchReport, name: str, start: Callable[[], Any]) -> Iterator[Any]:
    began = time.monotonic()
    peer = start()
    report.startup[name] = time.monotonic() - began
    try:
        yield peer
    finally:
        peer.close()


def _measure_plain(
    report: BenchReport, root: Path, processes: int, expected: dict[int, int]
) -> None:
    """The Celery row's largest job and the 1-dart overhead again, on plain TCP servers."""
    from mcpi.testing.servers import Sandbox

    with Sandbox(root, workers=1, concurrency=processes, tls=False, polite=True) as box:
        settings = _cluster_settings(box, root / "cache")
        _tune(settings)
        top = max(report.sizes)
        _mcpi_job(min(report.sizes), settings)  # warm up, as measure() does
        hits, seconds = _mcpi_job(top, settings)
        if hits != expected[top]:
            raise RuntimeError(f"plain TCP counted {hits} hits of {top}, not {expected[top]}")
        report.plain_rate = top / seconds
        report.plain_tasks_per_second = _overhead(settings)[0]


def _local_settings(cache: Path | None = None) -> Any:
    from mcpi.settings import Settings

    return Settings(cache_dir=cache)


def _cluster_settings(box: Any, cache: Path) -> Any:
    from mcpi.settings import Settings

    ca = box.ca.cert if box.ca else None
    return Settings(
        broker_url=box.rabbitmq.url, result_backend=box.redis.url, cache_dir=cache, tls_ca=ca
    )


def _tune(settings: Any) -> None:
    from mcpi.hub.request import JobRequest
    from mcpi.hub.run import run_tune

    run_tune(JobRequest("pi", samples=10**9), settings)


def _mcpi_job(
    darts: int, settings: Any, local: int | None = None, chunk_size: int | None = None
) -> tuple[int, float]:
    """Hits and wall seconds (from the first submission) of one mcpi job."""
    from mcpi.hub.progress import NoProgress
    from mcpi.hub.request import ESTIMATE, JobRequest
    from mcpi.hub.run import run_job

    request = JobRequest(
        "pi",
        samples=darts,
        seed=SEED,
        chunk_size=chunk_size,
        local=local is not None,
        processes=local,
        view=ESTIMATE,
    )
    report = run_job(request, settings, NoProgress())
    return small.hits_of(report), report.wall_seconds


def _overhead(settings: Any) -> tuple[float, float]:
    """Tasks/s for 2,000 1-dart chunks, and the wall time of a 1-dart job."""
    chunks = 2000
    _, seconds = _mcpi_job(chunks, settings, chunk_size=1)
    _, first = _mcpi_job(1, settings, chunk_size=1)
    return chunks / seconds, first


def _hub_rss(box: Any, cache: Path, darts: int) -> int:
    """Peak RSS (KiB) of an ``mcpi-hub estimate`` process running a job of ``darts``."""
    env = small.cli_env(box.env(), cache)
    argv = [
        *(sys.executable, "-m", "mcpi", "estimate", "-n", str(darts), "--no-progress"),
        *("--json", "--timeout", str(RSS_DEADLINE), "--seed", str(SEED)),
    ]
    status, peak, _ = run_for_peak_rss(argv, env)
    if status not in (0, 6):  # finished, or stopped by its deadline
        raise RuntimeError(f"the hub for {darts:.0e} darts exited with {status}")
    return peak


# A process's peak RSS counts the memory of the process it was forked from (the kernel
# keeps the high-water mark across exec), so the measured command is forked from this
# tiny launcher, not from the big benchmarking or test process.
_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execvpe(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as result:
    result.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}")
"""


def run_for_peak_rss(argv: Sequence[str], env: dict[str, str]) -> tuple[int, int, str]:
    """Run ``argv``; return its exit status, its peak RSS in KiB and its stderr."""
    with tempfile.TemporaryDirectory(prefix="mcpi-rss-") as tmp:
        result = Path(tmp) / "result"
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(result), *argv],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        if not result.exists():
            raise RuntimeError(f"could not measure {argv[0]}: {done.stderr.strip()}")
        status, peak = result.read_text().split()
    return int(status), int(peak), done.stderr


def as_text(report: BenchReport) -> str:
    top = max(report.sizes)
    pool, limit = report.baseline, report.limit
    lines = [
        f"mcpi-hub bench: {report.machine}; P = {report.processes} processes",
        "",
        f"{'backend':<22} {'darts':>8} {'darts/s':>10} {'vs Pool':>8} {'vs limit':>9}  settings",
    ]

    def line(name: str, row: Measurement | None, settings: str) -> None:
        if row is None:
            lines.append(f"{name:<22} {'':>8} {'':>10} {'':>8} {'':>9}  {settings}")
            return
        rate = row.rate
        vs_pool = f"{rate / pool:8.3f}" if pool else f"{'':>8}"
        vs_limit = f"{rate / limit:9.3f}" if limit else f"{'':>9}"
        lines.append(f"{name:<22} {row.darts:>8.0e} {rate:>10.3g} {vs_pool} {vs_limit}  {settings}")

    singles = {r.backend: r for r in report.rows if r.backend not in PARALLEL}
    for name, settings in (
        ("seed: naive loop", "1 core: pure-Python loop over random.random()"),
        ("seed: task body", "1 core: numpy array of points, then a Python loop"),
        ("reference kernel", "1 core: count_hits_reference, numpy (what the peers run)"),
        ("mcpi kernel", f"1 core: count_hits, {kernel.KERNEL}"),
        (RAW, "1 core: numpy's PCG64.random_raw"),
        (STEPS, f"1 core: the PCG64 step alone, {kernel.STEPPING}: the limit per core"),
    ):
        line(name, singles.get(name), settings)
    for name in PARALLEL:
        row = next((r for r in report.rows if r.backend == name and r.darts == top), None)
        line(name, row, report.skipped.get(name) or SETTINGS[name])
    before, after = report.rate(POOL, top), report.rate(POOL_AGAIN, top)
    if before and after:
        lines.append(
            f"(vs Pool: to the mean of the Pool's runs before and after the others, "
            f"{before:.3g} and {after:.3g} darts/s, {after / before - 1:+.1%} drift)"
        )
    lines.append(
        f"(limit = {report.processes} cores x {STEPS if report.rate(STEPS) else RAW} of one core"
        + (f" = {limit:.3g} darts/s" if limit else "")
        + "; start-up, not timed above: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in report.startup.items() if k != POOL_AGAIN)
        + ")"
    )
    if report.tiny_tasks_per_second:
        lines += [
            "",
            f"overhead: {report.tiny_tasks_per_second:,.0f} tasks/s for 1-dart chunks through "
            f"one broker; a 1-dart job's result after {report.first_result_seconds:.3f} s",
        ]
    tls_rate = report.rate(MCPI_CELERY, top)
    if report.plain_rate and tls_rate and report.plain_tasks_per_second:
        tasks, plain = report.tiny_tasks_per_second or 0.0, report.plain_tasks_per_second
        lines.append(
            f"TLS: mcpi over Celery at {top:.0e} darts {tls_rate:.3g} darts/s with TLS, "
            f"{report.plain_rate:.3g} in plain TCP ({tls_rate / report.plain_rate:.3f}); "
            f"1-dart chunks {tasks:,.0f} tasks/s with TLS, "
            f"{plain:,.0f} plain ({tasks / plain:.3f})"
        )
    if report.hub_rss_kib:
        rss = report.hub_rss_kib
        lines.append(
            "hub peak RSS: "
            + ", ".join(f"{n:.0e} darts {kib / 1024:.0f} MiB" for n, kib in rss.items())
            + f" (max/min {max(rss.values()) / min(rss.values()):.2f})"
        )
    if report.small_jobs is not None:
        lines += small.as_lines(report.small_jobs)
    if report.time_to_precision is not None:
        lines += precision.as_text(report.time_to_precision)
    if report.plot:
        lines.append(f"plot: {report.plot}")
    lines += [f"note: {n}" for n in report.notes]
    return "\n".join(lines) + "\n"


def as_json(report: BenchReport) -> dict[str, Any]:
    return {
        "machine": report.machine,
        "processes": report.processes,
        "sizes": report.sizes,
        "rows": [
            {"backend": r.backend, "darts": r.darts, "seconds": r.seconds, "rate": r.rate}
            for r in report.rows
        ],
        "limit": report.limit,
        "baseline": report.baseline,
        "skipped": report.skipped,
        "startup_seconds": report.startup,
        "tiny_tasks_per_second": report.tiny_tasks_per_second,
        "first_result_seconds": report.first_result_seconds,
        "plain_rate": report.plain_rate,
        "plain_tasks_per_second": report.plain_tasks_per_second,
        "hub_rss_kib": {str(k): v for k, v in report.hub_rss_kib.items()},
        "small_jobs": small.as_json(report.small_jobs) if report.small_jobs else None,
        "time_to_precision": (
            precision.as_json(report.time_to_precision) if report.time_to_precision else None
        ),
        "plot": str(report.plot) if report.plot else None,
        "notes": report.notes,
    }


def draw(report: BenchReport, path: Path) -> None:
    """Rate against job size for each backend, with the limit and the seed's rates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5), dpi=120)
    for name in PARALLEL:
        rows = sorted((r for r in report.rows if r.backend == name), key=lambda r: r.darts)
        if rows:
            axes.plot([r.darts for r in rows], [r.rate for r in rows], marker="o", label=name)
    sizes = [min(report.sizes), max(report.sizes)]
    if report.limit:
        axes.plot(
            sizes, [report.limit] * 2, "k--", label=f"limit: {report.processes} x PCG64 steps"
        )
    for name, style in (
        ("mcpi kernel", "g:"),
        ("seed: task body", "r:"),
        ("seed: naive loop", "m:"),
    ):
        rate = report.rate(name)
        if rate:
            axes.plot(sizes, [rate] * 2, style, label=f"{name} (1 core)")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("darts per job")
    axes.set_ylabel("darts per second")
    axes.set_title(f"mcpi-hub bench, P = {report.processes}\n{report.machine}", fontsize=9)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
