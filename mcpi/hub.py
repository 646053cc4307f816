"""The hub: turns an estimate request into a job, runs it, and reports.

With a cluster configured the job runs on the Celery workers (:mod:`mcpi.cluster`);
without one, or with ``local=True``, on a local process pool (:mod:`mcpi.local`). Both
count the same plan with the same kernel and tally, so the same (seed, N) gives the
bit-identical hit count wherever it runs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from mcpi import __version__
from mcpi.errors import JobFailed, McpiError, UsageError
from mcpi.job import Job, new_job_id, new_seed
from mcpi.plan import Plan
from mcpi.precision import PrecisionTarget, next_look, pilot_darts, reached
from mcpi.progress import Progress, Tee
from mcpi.records import DONE, FAILED, ChunkJournal, JobBook, JobRecord, RecordError, Stage
from mcpi.settings import Settings
from mcpi.stats import Estimate, HostThroughput, HostWork, estimate, host_throughput, rate
from mcpi.tally import JobTally
from mcpi.trace import Trace
from mcpi.tuning import Capacity, ChunkChoice, choose_chunk_size


@dataclass(frozen=True)
class EstimateRequest:
    """What the user asked for; None means "choose for me"."""

    darts: int
    seed: int | None = None
    chunk_size: int | None = None
    local: bool = False
    processes: int | None = None
    #: Throw darts until π's interval is this narrow (``darts`` is then unused).
    precision: PrecisionTarget | None = None
    #: Finish this earlier job instead of starting one.
    resume: str | None = None


@dataclass(frozen=True)
class JobReport:
    """Everything ``mcpi-hub estimate`` prints about a finished job."""

    job_id: str
    seed: int
    #: The job's stages: one, or the looks of a precision-targeted job.
    stages: list[Stage]
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
    precision: PrecisionTarget | None = None
    #: Whether this run finished a job an earlier hub had started.
    resumed: bool = False
    trace: Trace | None = None
    #: Of a resumed job: darts an earlier run counted, read back rather than thrown.
    earlier_darts: int = 0

    @property
    def darts(self) -> int:
        return self.estimate.darts

    @property
    def chunks(self) -> int:
        return sum(Plan(s.darts, s.chunk_size).chunk_count for s in self.stages)

    @property
    def chunk_size(self) -> int:
        return self.stages[-1].chunk_size

    @property
    def precision_reached(self) -> bool:
        return self.precision is None or self.estimate.half_width <= self.precision.half_width

    @property
    def thrown_darts(self) -> int:
        """Darts thrown in this run (all of them, unless the job was resumed)."""
        return self.darts - self.earlier_darts

    @property
    def darts_per_second(self) -> float:
        return rate(self.thrown_darts, self.wall_seconds)


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
    def where(self) -> str: ...

    @property
    def description(self) -> str: ...
    def prepare(self) -> int: ...
    def capacity(self, recalibrate: bool = False) -> Capacity: ...
    def run(
        self,
        job: Job,
        progress: Progress,
        deadline: float | None,
        resume: bool = False,
        journal: ChunkJournal | None = None,
    ) -> JobTally: ...
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
    """Run the job ``request`` describes where ``settings`` say, reporting to ``progress``.

    Every job is recorded (see :mod:`mcpi.records`); ``request.resume`` finishes a
    recorded one where it ran, with its seed and stages.
    """
    book = JobBook(settings.cache_dir / "jobs" if settings.cache_dir else None)
    record = None
    if request.resume is not None:
        try:
            record = book.load(request.resume)
        except RecordError as exc:
            raise UsageError(str(exc)) from None
        if record.status == DONE:
            raise UsageError(f"job {record.id} is finished already: {_outcome(record)}")
        request = replace(request, local=record.mode == "local")
    executor, notes = choose_executor(request, settings)
    if record is not None:
        notes = []  # it runs where it started; the report says it was resumed
    try:
        return JobRun(executor, notes, request, settings, progress, book, record).run()
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


class JobRun:
    """One run of the hub over a job's stages, keeping its record up to date."""

    def __init__(
        self,
        executor: Executor,
        notes: list[str],
        request: EstimateRequest,
        settings: Settings,
        progress: Progress,
        book: JobBook,
        record: JobRecord | None,
    ) -> None:
        self.executor = executor
        self.notes = notes
        self.request = request
        self.settings = settings
        self.progress = progress
        self.book = book
        self.record = record
        self.target = request.precision
        self.trace = Trace()
        self.chunking: ChunkChoice | None = None
        self.capacity: Capacity | None = None
        self.hosts: dict[str, HostWork] = {}
        self.versions: set[str] = set()
        self.duplicates = 0
        self.earlier_darts = 0

    def run(self) -> JobReport:
        executor = self.executor
        executor.prepare()
        record = self.record or self._new_record()
        if self.record is not None:
            self._check_resumable(record)
        began = time.monotonic()
        deadline = began + self.settings.timeout if self.settings.timeout else None
        observer = Tee(self.progress, self.trace)
        try:
            # A resumed job's unfinished stage may have chunks counted already.
            unfinished = record.stages[-1] if record.stages else None
            stage = self._next_stage(record)
            while stage is not None:
                self._count(record, stage, observer, deadline, resuming=stage is unfinished)
                stage = self._next_stage(record)
        except BaseException as exc:
            # Left "running" (or "failed" with the reason) and resumable.
            if isinstance(exc, McpiError):
                record.status, record.error = FAILED, str(exc)
            self.book.save(record)
            raise
        wall = time.monotonic() - began
        hits, darts = record.counted
        result = estimate(hits, darts)
        record.status, record.error = DONE, None
        record.result = {
            "darts": darts,
            "hits": hits,
            "pi": result.pi,
            "ci_low": result.ci_low,
            "ci_high": result.ci_high,
        }
        self.book.save(record)
        self._remove_journal(record)
        return self._report(record, result, wall)

    def _new_record(self) -> JobRecord:
        request = self.request
        if self.target is not None:
            asked: dict[str, Any] = {
                "precision": self.target.half_width,
                "max_darts": self.target.max_darts,
            }
        else:
            asked = {"darts": request.darts}
        if request.chunk_size is not None:
            asked["chunk_size"] = request.chunk_size
        record = JobRecord(
            id=new_job_id(),
            seed=new_seed() if request.seed is None else request.seed,
            mode=self.executor.mode,
            where=self.executor.where,
            request=asked,
        )
        self.book.prune()
        self.book.save(record)
        return record

    def _check_resumable(self, record: JobRecord) -> None:
        if record.where != self.executor.where:
            raise UsageError(
                f"job {record.id} ran on {record.where}; this hub is configured for "
                f"{self.executor.where} (resume it with that cluster's settings)"
            )
        if "precision" in record.request:
            self.target = PrecisionTarget(record.request["precision"], record.request["max_darts"])
        self.notes.append(f"resumed job {record.id}, started {record.created}")

    def _next_stage(self, record: JobRecord) -> Stage | None:
        """The stage to count next: an unfinished one, a new look, or None when done."""
        if record.stages and not record.stages[-1].counted:
            return record.stages[-1]
        hits, darts = record.counted
        if self.target is None:
            total = record.request["darts"]
            if darts >= total:
                return None
        else:
            if darts and (reached(self.target, hits, darts) or darts >= self.target.max_darts):
                return None
            total = next_look(self.target, hits, darts) if darts else pilot_darts(self.target)
        stage = Stage(first=darts, darts=total - darts, chunk_size=self._chunk_size(total - darts))
        record.stages.append(stage)
        self.book.save(record)
        return stage

    def _chunk_size(self, darts: int) -> int:
        chosen = self.request.chunk_size
        if self.record is not None:
            chosen = self.record.request.get("chunk_size")
        if chosen:
            return min(int(chosen), darts)
        if self.capacity is None:
            self.capacity = self.executor.capacity()
        self.chunking = choose_chunk_size(
            darts, self.capacity, wave_chunks=self.settings.wave_chunks
        )
        return self.chunking.chunk_size

    def _count(
        self,
        record: JobRecord,
        stage: Stage,
        observer: Progress,
        deadline: float | None,
        resuming: bool,
    ) -> None:
        index = record.stages.index(stage)
        try:
            plan = Plan(stage.darts, stage.chunk_size, stage.first)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        job = Job(id=stage_job_id(record.id, index), seed=record.seed, plan=plan)
        journal_path = self.book.journal(record.id)
        journal = ChunkJournal(journal_path) if journal_path is not None else None
        observer.start(plan.darts)
        try:
            tally = self.executor.run(job, observer, deadline, resume=resuming, journal=journal)
        finally:
            observer.finish()
        if not tally.complete:
            raise JobFailed(f"only {tally.darts} of {plan.darts} darts were counted")
        self.executor.learn(tally.hosts)
        stage.hits = tally.hits
        self.book.save(record)
        if self.target is not None:
            self.trace.look(stage.first + stage.darts)
        for host, work in tally.hosts.items():
            self.hosts.setdefault(host, HostWork()).absorb(work)
        self.versions |= tally.versions
        self.duplicates += tally.duplicates
        self.earlier_darts += tally.earlier_darts

    def _remove_journal(self, record: JobRecord) -> None:
        path = self.book.journal(record.id)
        if path is not None:
            ChunkJournal(path).remove()

    def _report(self, record: JobRecord, result: Estimate, wall: float) -> JobReport:
        notes = self.notes
        versions = sorted(self.versions)
        if versions and versions != [__version__]:
            notes.append(f"workers ran mcpi {', '.join(versions)}; this hub is {__version__}")
        if self.target is not None:
            if result.half_width <= self.target.half_width:
                notes.append(
                    f"precision ±{self.target.half_width:g} reached after "
                    f"{len(record.stages)} look(s)"
                )
            else:
                notes.append(
                    f"precision ±{self.target.half_width:g} NOT reached: stopped at the "
                    f"bound of {self.target.max_darts:,} darts (--max-darts)"
                )
        return JobReport(
            job_id=record.id,
            seed=record.seed,
            stages=record.stages,
            mode=self.executor.mode,
            ran_on=self.executor.description,
            estimate=result,
            wall_seconds=wall,
            hosts=host_throughput(self.hosts, wall),
            duplicates=self.duplicates,
            worker_versions=versions,
            chunking=self.chunking,
            capacity=self.capacity,
            notes=notes + self.executor.notes,
            precision=self.target,
            resumed=self.record is not None,
            trace=self.trace,
            earlier_darts=self.earlier_darts,
        )


def stage_job_id(job_id: str, stage: int) -> str:
    """The id of a job's stage in task ids and backend keys: the job's for the first."""
    return job_id if stage == 0 else f"{job_id}-{stage}"


def _outcome(record: JobRecord) -> str:
    result = record.result or {}
    return f"π ≈ {result.get('pi')} from {result.get('darts'):,} darts, {record.updated}"
