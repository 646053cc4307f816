"""The hub: turns an estimate request into a job, runs it, and reports.

With a cluster configured the job runs on the Celery workers (:mod:`mcpi.cluster`);
without one, or with ``local=True``, on a local process pool (:mod:`mcpi.local`). Both
count the same plan with the same kernel and tally, so the same (seed, N) gives the
bit-identical hit count wherever it runs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from mcpi import __version__
from mcpi.errors import JobFailed, UsageError
from mcpi.job import Job, new_job_id, new_seed
from mcpi.plan import Plan
from mcpi.progress import Progress
from mcpi.settings import Settings
from mcpi.stats import Estimate, HostThroughput, HostWork, estimate, host_throughput, rate
from mcpi.tally import JobTally
from mcpi.tuning import Capacity, ChunkChoice, choose_chunk_size


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
    #: How automatic chunk sizing chose the chunk size; None if the user gave it.
    chunking: ChunkChoice | None = None
    #: The measurements automatic chunking used (None if the user gave the chunk size).
    capacity: Capacity | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def darts_per_second(self) -> float:
        return rate(self.job.plan.darts, self.wall_seconds)


@dataclass(frozen=True)
class TuneReport:
    """What ``mcpi-hub tune`` measured, and the chunking it would choose for a job."""

    mode: str
    ran_on: str
    capacity: Capacity
    choice: ChunkChoice


class Executor(Protocol):
    mode: str  # "local" or "cluster"
    notes: list[str]

    @property
    def description(self) -> str: ...
    def prepare(self) -> int: ...
    def capacity(self, recalibrate: bool = False) -> Capacity: ...
    def run(self, job: Job, progress: Progress, deadline: float | None) -> JobTally: ...
    def learn(self, work: Mapping[str, HostWork]) -> None: ...
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


def run_tune(request: EstimateRequest, settings: Settings) -> TuneReport:
    """Measure the workers afresh (and remember it); say how ``request`` would be chunked."""
    executor, _ = choose_executor(request, settings)
    try:
        executor.prepare()
        capacity = executor.capacity(recalibrate=True)
        return TuneReport(
            mode=executor.mode,
            ran_on=executor.description,
            capacity=capacity,
            choice=choose_chunk_size(request.darts, capacity, wave_chunks=settings.wave_chunks),
        )
    finally:
        executor.close()


def _run(
    executor: Executor,
    notes: list[str],
    request: EstimateRequest,
    settings: Settings,
    progress: Progress,
) -> JobReport:
    executor.prepare()
    chunking: ChunkChoice | None = None
    capacity: Capacity | None = None
    if request.chunk_size is None:
        capacity = executor.capacity()
        chunking = choose_chunk_size(request.darts, capacity, wave_chunks=settings.wave_chunks)
        chunk_size = chunking.chunk_size
    else:
        chunk_size = request.chunk_size
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
    executor.learn(tally.hosts)

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
        chunking=chunking,
        capacity=capacity,
        notes=notes + executor.notes,
    )
