"""The hub: turns an estimate request into a job, runs it, and reports.

With a cluster configured the job runs on the Celery workers (:mod:`mcpi.cluster`);
without one, or with ``local=True``, on a local process pool (:mod:`mcpi.local`). Both
count the same plan with the same kernel and tally, so the same (seed, N) gives the
bit-identical hit count wherever it runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from mcpi import __version__
from mcpi.errors import JobFailed, UsageError
from mcpi.job import Job, new_job_id, new_seed
from mcpi.plan import Plan, default_chunk_size
from mcpi.progress import Progress
from mcpi.settings import Settings
from mcpi.stats import Estimate, HostThroughput, estimate, host_throughput, rate
from mcpi.tally import JobTally


@dataclass(frozen=True)
class EstimateRequest:
    """What the user asked for; None means "choose for me"."""

    darts: int
    seed: int | None = None
    chunk_size: int | None = None
    local: bool = False
    processes: int | None = None


@dataclass(frozen=True)
class JobReport:
    """Everything ``mcpi-hub estimate`` prints about a finished job."""

    job: Job
    mode: str  # "local" or "cluster"
    ran_on: str
    estimate: Estimate
    wall_seconds: float
    hosts: list[HostThroughput]
    duplicates: int
    worker_versions: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def darts_per_second(self) -> float:
        return rate(self.job.plan.darts, self.wall_seconds)


class Executor(Protocol):
    mode: str  # "local" or "cluster"
    notes: list[str]

    @property
    def description(self) -> str: ...
    def prepare(self) -> int: ...
    def run(self, job: Job, progress: Progress, deadline: float | None) -> JobTally: ...
    def close(self) -> None: ...


def choose_executor(request: EstimateRequest, settings: Settings) -> tuple[Executor, list[str]]:
    """The cluster if one is configured (and not overridden), else the local pool."""
    from mcpi.local import LocalPool

    if request.local:
        return LocalPool(request.processes), ["ran locally (--local)"]
    if not settings.cluster_configured:
        return LocalPool(request.processes), [
            "ran locally: no cluster configured (see `mcpi-hub estimate --help` to use one)"
        ]
    from mcpi.cluster import Cluster

    return Cluster(settings), []


def run_estimate(request: EstimateRequest, settings: Settings, progress: Progress) -> JobReport:
    """Run the job ``request`` describes where ``settings`` say, reporting to ``progress``."""
    executor, notes = choose_executor(request, settings)
    try:
        return _run(executor, notes, request, settings, progress)
    finally:
        executor.close()


def _run(
    executor: Executor,
    notes: list[str],
    request: EstimateRequest,
    settings: Settings,
    progress: Progress,
) -> JobReport:
    slots = executor.prepare()
    chunk_size = request.chunk_size or default_chunk_size(request.darts, slots)
    try:
        plan = Plan(request.darts, chunk_size)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    seed = new_seed() if request.seed is None else request.seed
    job = Job(id=new_job_id(), seed=seed, plan=plan)

    began = time.monotonic()
    deadline = began + settings.timeout if settings.timeout else None
    progress.start(plan.darts)
    try:
        tally = executor.run(job, progress, deadline)
    finally:
        progress.finish()
    wall = time.monotonic() - began
    if not tally.complete:
        raise JobFailed(f"only {tally.darts} of {plan.darts} darts were counted")

    versions = sorted(tally.versions)
    if versions != [__version__]:
        notes.append(f"workers ran mcpi {', '.join(versions)}; this hub is {__version__}")
    return JobReport(
        job=job,
        mode=executor.mode,
        ran_on=executor.description,
        estimate=estimate(tally.hits, tally.darts),
        wall_seconds=wall,
        hosts=host_throughput(tally.hosts, wall),
        duplicates=tally.duplicates,
        worker_versions=versions,
        notes=notes + executor.notes,
    )
