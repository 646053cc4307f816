"""Small jobs and sweeps: what a job costs mcpi besides its darts, beside the Pool and Dask.

A scientist's real pattern is many small-to-medium jobs: a notebook re-running a cell,
a sweep over 50 parameter values. So besides darts/s at large sizes, the bench times
whole jobs at small sizes, each backend warm (started, connected, rates learnt, one
job run before the clock):

* **CLI**: ``mcpi-hub estimate -n N`` as a fresh process on the private cluster:
  imports, preflight, submission, results and report, as a user at a shell pays them.
* **local CLI**: ``mcpi-hub estimate --local -n N`` (the embedded default, its rates
  learnt), beside a **Pool script**: a fresh Python process that counts the same darts
  with the same kernel on a ``multiprocessing.Pool`` -- what a user writes by hand.
* **warm API**: a job through a warm executor (:class:`mcpi.hub.warm.Warm`, what
  ``mcpi.Session`` holds), from request to report.
* ``multiprocessing.Pool`` and Dask, counting the same darts as in the main table.
* **Sweep**: ``SWEEP_JOBS`` jobs of ``SWEEP_DARTS`` darts each (seeds ``SEED + k``),
  all submitted at once: mcpi's sweep (:func:`mcpi.hub.sweep.run_sweep`) on the warm
  cluster, against the Pool and Dask each given one task per job, all at once.

Every job's hit count is checked against the kernel's. Each figure is the best of a
few runs; the targets (issue 18) are judged on the full sizes only.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcpi.bench import peers
from mcpi.core.kernel import count_hits

SEED = 2026
FULL_SIZES = (1, 10**7, 10**8)
QUICK_SIZES = (1, 10**6)
SWEEP_JOBS, SWEEP_DARTS = 50, 10**7
QUICK_SWEEP_JOBS, QUICK_SWEEP_DARTS = 10, 10**6
REPEATS = 3

CLI = "mcpi CLI (whole command)"
LOCAL_CLI = "mcpi CLI --local (whole)"
POOL_SCRIPT = "Pool script (whole process)"
WARM = "mcpi warm API"
POOL = peers.PoolPeer.name
DASK = peers.DaskPeer.name


@dataclass(frozen=True)
class Target:
    """One of the small-jobs targets: what was measured against its bound."""

    name: str
    value: float
    bound: float
    unit: str  # "s", or a ratio's "x Pool" / "x Pool script"

    @property
    def met(self) -> bool:
        return self.value <= self.bound


@dataclass
class SmallJobs:
    sizes: list[int]
    sweep_jobs: int
    sweep_darts: int
    #: backend -> darts -> seconds, the best of the runs.
    seconds: dict[str, dict[int, float]] = field(default_factory=dict)
    #: backend -> seconds for the whole sweep.
    sweep: dict[str, float] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)


def measure_small_jobs(
    settings: Any,
    env: dict[str, str],
    processes: int,
    quick: bool,
    say: Callable[[str], None],
) -> SmallJobs:
    """Time small jobs and a sweep on the cluster ``settings`` name (its rates learnt),
    the CLI run with ``env``, beside a Pool and (if installed) Dask of ``processes``."""
    from mcpi.hub.executor import choose_executor
    from mcpi.hub.request import JobRequest
    from mcpi.hub.warm import Warm

    sizes = list(QUICK_SIZES if quick else FULL_SIZES)
    jobs, darts = (QUICK_SWEEP_JOBS, QUICK_SWEEP_DARTS) if quick else (SWEEP_JOBS, SWEEP_DARTS)
    repeats = 1 if quick else REPEATS
    result = SmallJobs(sizes, jobs, darts)
    expected = {n: count_hits(SEED, 0, n) for n in sizes}
    sweep_expected = [count_hits(SEED + k, 0, darts) for k in range(jobs)]

    def fastest(backend: str, what: str, run: Callable[[], Any], hits: Any) -> float:
        """The best of ``repeats`` runs (after one to warm up), each checked to count ``hits``."""
        run()  # warm: the first job of a session is not what is measured
        runs = []
        for _ in range(repeats):
            began = time.perf_counter()
            counted = run()
            runs.append(time.perf_counter() - began)
            if counted != hits:
                raise RuntimeError(f"{backend} counted {counted} hits of {what}, not {hits}")
        return min(runs)

    def best(backend: str, n: int, job: Callable[[], int]) -> None:
        seconds = fastest(backend, f"{n:.0e} darts", job, expected[n])
        result.seconds.setdefault(backend, {})[n] = seconds

    def best_sweep(backend: str, sweep: Callable[[], list[int]]) -> None:
        result.sweep[backend] = fastest(backend, "its sweep", sweep, sweep_expected)

    say(f"small jobs: {', '.join(f'{n:.0e}' for n in sizes)} darts through the CLI")
    for n in sizes:
        best(CLI, n, lambda n=n: _cli_job(env, n))  # type: ignore[misc]
    for n in sizes:
        best(LOCAL_CLI, n, lambda n=n: _cli_job(env, n, "--local", f"--processes={processes}"))  # type: ignore[misc]
        best(POOL_SCRIPT, n, lambda n=n: _pool_script(env, n, processes))  # type: ignore[misc]

    warm = Warm(*choose_executor(JobRequest(samples=1), settings))
    try:
        say("small jobs: a warm API session, and a sweep")
        for n in sizes:
            best(WARM, n, lambda n=n: _warm_job(warm, settings, n))  # type: ignore[misc]
        best_sweep(WARM, lambda: _warm_sweep(warm, settings, jobs, darts))
    finally:
        warm.close()

    say("small jobs: the Pool and Dask")
    # With mcpi's own kernel: these rows compare per-job overhead, not kernels.
    pool = peers.PoolPeer(processes, kernel=count_hits)
    try:
        for n in sizes:
            best(POOL, n, lambda n=n: pool.count(n, SEED))  # type: ignore[misc]
        best_sweep(POOL, lambda: pool.count_many([(SEED + k, darts) for k in range(jobs)]))
    finally:
        pool.close()
    if importlib.util.find_spec("distributed") is not None:  # else the main table says so
        with peers.environment_restored(), peers.quiet_dask():
            dask = peers.DaskPeer(processes, kernel=count_hits)
            try:
                for n in sizes:
                    best(DASK, n, lambda n=n: dask.count(n, SEED))  # type: ignore[misc]
                best_sweep(DASK, lambda: dask.count_many([(SEED + k, darts) for k in range(jobs)]))
            finally:
                dask.close()
    if not quick:
        result.targets = targets(result)
    return result


def targets(small: SmallJobs) -> list[Target]:
    """Issue 18's targets, on the full sizes."""
    warm, cli, pool = small.seconds[WARM], small.seconds[CLI], small.seconds[POOL]
    return [
        Target("warm API job of 1e8 darts", warm[10**8] / pool[10**8], 1.5, "x Pool"),
        Target("warm API job of 1 dart", warm[1], 0.05, "s"),
        Target("CLI job of 1e8 darts, whole command", cli[10**8], 0.8, "s"),
        Target(
            "local CLI job of 1e8 darts, whole command",
            small.seconds[LOCAL_CLI][10**8] / small.seconds[POOL_SCRIPT][10**8],
            2.0,
            "x Pool script",
        ),
        Target(
            f"sweep of {small.sweep_jobs} x {small.sweep_darts:.0e} darts",
            small.sweep[WARM] / small.sweep[POOL],
            1.5,
            "x Pool",
        ),
    ]


#: The Pool script: the same darts, the same kernel, split evenly over the processes.
POOL_SCRIPT_CODE = """
import multiprocessing, sys
from mcpi.core.kernel import count_hits

def part(bounds):
    return count_hits(SEED, *bounds)

if __name__ == "__main__":
    SEED, darts, processes = map(int, sys.argv[1:])
    cuts = [darts * i // processes for i in range(processes + 1)]
    with multiprocessing.Pool(processes) as pool:
        print(sum(pool.map(part, zip(cuts, cuts[1:]))))
"""


def _pool_script(env: dict[str, str], darts: int, processes: int) -> int:
    done = subprocess.run(
        [sys.executable, "-c", POOL_SCRIPT_CODE, str(SEED), str(darts), str(processes)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return int(done.stdout)


def _cli_job(env: dict[str, str], darts: int, *options: str) -> int:
    argv = [sys.executable, "-m", "mcpi", "estimate", "--json", "--no-progress", *options]
    done = subprocess.run(
        [*argv, "-n", str(darts), "--seed", str(SEED)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"mcpi-hub estimate failed: {done.stderr.strip()}")
    return int(json.loads(done.stdout)["hits"])


def _warm_job(warm: Any, settings: Any, darts: int) -> int:
    from mcpi.hub.progress import NoProgress
    from mcpi.hub.request import ESTIMATE, JobRequest
    from mcpi.hub.run import run_job

    request = JobRequest("pi", samples=darts, seed=SEED, view=ESTIMATE)
    return hits_of(run_job(request, settings, NoProgress(), warm))


def _warm_sweep(warm: Any, settings: Any, jobs: int, darts: int) -> list[int]:
    from mcpi.hub.request import ESTIMATE, JobRequest
    from mcpi.hub.sweep import run_sweep

    requests = [JobRequest("pi", samples=darts, seed=SEED + k, view=ESTIMATE) for k in range(jobs)]
    hits = []
    for outcome in run_sweep(requests, settings, warm):
        if outcome.report is None:
            raise RuntimeError(f"a job of the sweep failed: {outcome.error}")
        hits.append(hits_of(outcome.report))
    return hits


def hits_of(report: Any) -> int:
    """The hits of a π job's report: the successes of its one, binary output."""
    (pi,) = report.outputs
    hits: int = pi.successes
    return hits


def cli_env(box_env: dict[str, str], cache: Path) -> dict[str, str]:
    """This process's environment for a CLI on the private cluster, with its rate book."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("MCPI_")},
        **box_env,
        "MCPI_CACHE_DIR": str(cache),
        "XDG_CONFIG_HOME": str(cache.parent / "no-config"),
    }


def as_lines(small: SmallJobs) -> list[str]:
    backends = [b for b in (CLI, LOCAL_CLI, POOL_SCRIPT, WARM, POOL, DASK) if b in small.seconds]
    header = f"{'small jobs: whole seconds':<26}" + "".join(f"{n:>10.0e}" for n in small.sizes)
    sweep_head = f"  sweep {small.sweep_jobs} x {small.sweep_darts:.0e}"
    lines = ["", header + sweep_head]
    for backend in backends:
        cells = "".join(f"{small.seconds[backend][n]:10.3f}" for n in small.sizes)
        sweep = small.sweep.get(backend)
        lines.append(f"{backend:<26}{cells}" + (f"  {sweep:10.3f}" if sweep else ""))
    pool = small.seconds.get(POOL, {})
    warm = small.seconds.get(WARM, {})
    if pool and warm:
        ratios = "".join(f"{warm[n] / pool[n]:10.2f}" for n in small.sizes)
        sweep = small.sweep[WARM] / small.sweep[POOL] if POOL in small.sweep else None
        lines.append(f"{'warm API / Pool':<26}{ratios}" + (f"  {sweep:10.2f}" if sweep else ""))
    for t in small.targets:
        shown = f"{t.value:.3f} s" if t.unit == "s" else f"{t.value:.2f} {t.unit}"
        bound = f"{t.bound:g} s" if t.unit == "s" else f"{t.bound:g} {t.unit}"
        lines.append(f"target: {t.name}: {shown} (<= {bound}) {'met' if t.met else 'MISSED'}")
    return lines


def as_json(small: SmallJobs) -> dict[str, Any]:
    return {
        "sizes": small.sizes,
        "seconds": {b: {str(n): s for n, s in by.items()} for b, by in small.seconds.items()},
        "sweep": {"jobs": small.sweep_jobs, "darts": small.sweep_darts, "seconds": small.sweep},
        "targets": [
            {"name": t.name, "value": t.value, "bound": t.bound, "unit": t.unit, "met": t.met}
            for t in small.targets
        ],
    }
