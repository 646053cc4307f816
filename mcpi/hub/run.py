"""The hub: turns a request into a job (π, or a model), runs it stage by stage, and reports.

With a cluster configured the job runs on the Celery workers; without one, or with
``local=True``, on the local process pool (:func:`~mcpi.hub.executor.choose_executor`).
The hub owns what persists: every job is recorded (:mod:`mcpi.hub.records`) so that a
crashed one can be resumed, and a cluster's measured rates are kept in the rate book
(:mod:`mcpi.hub.rates`) so that later jobs need not calibrate.

When a job stops is one rule (:mod:`mcpi.core.precision`): a fixed size is one stage;
a precision target adds a stage at a time until the Chow–Robbins rule says stop.

A model job is the same pipeline over a model's samples: sizes, stages and chunks are
whole blocks of the model's block size (a request that is not is rounded up, and the
report says so), chunk results are exact sums, and the rates that size its chunks
are measured for that model (its cost per sample can be anything from nanoseconds to
seconds), and kept per model in the rate book.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from mcpi import __version__
from mcpi.core.chunk import ChunkResult
from mcpi.core.exact import OutputEstimate, output_estimate
from mcpi.core.job import Job, new_job_id, new_seed
from mcpi.core.model import ModelCall
from mcpi.core.plan import Plan
from mcpi.core.precision import FixedSize, ModelPrecision, PrecisionTarget, StoppingRule
from mcpi.core.stats import Estimate, estimate, host_throughput
from mcpi.core.tally import Totals
from mcpi.core.tuning import Capacity, ChunkChoice, choose_chunk_size
from mcpi.errors import JobFailed, McpiError, UsageError
from mcpi.hub.binding import BoundModel, bind
from mcpi.hub.executor import Executor, choose_executor
from mcpi.hub.progress import Progress, Tee
from mcpi.hub.rates import RateBook
from mcpi.hub.records import (
    DONE,
    FAILED,
    JobBook,
    JobRecord,
    RecordError,
    Stage,
    stage_job_id,
)
from mcpi.hub.report import JobReport, TuneReport
from mcpi.hub.request import EstimateRequest
from mcpi.hub.trace import Trace
from mcpi.hub.warm import Warm
from mcpi.settings import Settings


def run_estimate(
    request: EstimateRequest, settings: Settings, progress: Progress, warm: Warm | None = None
) -> JobReport:
    """Run the job ``request`` describes where ``settings`` say, reporting to ``progress``.

    Every job is recorded (see :mod:`mcpi.hub.records`); ``request.resume`` finishes a
    recorded one where it ran, with its seed and stages. With ``warm`` (a session's
    executor, :mod:`mcpi.hub.warm`) the job runs there, and it stays open after.
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
        if (record.model is not None) != request.model_job:
            command = "run" if record.model is not None else "estimate"
            raise UsageError(
                f"job {record.id} is a {record.kind} job: finish it with "
                f"`mcpi-hub {command} --resume {record.id}`"
            )
        source = record.model.get("source") if record.model else None
        request = replace(request, local=record.mode == "local", model=source)
    bound = None
    if request.model is not None:
        bound = bind(
            request.model,
            dict(request.params),
            # A resumed job's precision targets the output it started with.
            record.request.get("output") if record is not None else request.output,
            recorded=record.model if record is not None else None,
        )
    executor: Executor
    if warm is None:
        executor, notes = choose_executor(request, settings)
    else:
        executor = warm.job(request.model, bound.call.name if bound else None)
        notes = list(warm.why)
    try:
        check_runs_there(bound, executor)
        if record is not None:
            notes = []  # it runs where it started; the report says it was resumed
        return JobRun(executor, notes, request, settings, progress, book, record, bound).run()
    finally:
        executor.close()


def check_runs_there(bound: BoundModel | None, executor: Executor) -> None:
    """Refuse a model found in a local file or module anywhere but on the local pool."""
    if bound is not None and bound.local_only and executor.mode != "local":
        raise UsageError(
            f"model {bound.source} is a local file or module: it runs on the local pool "
            "only (--local); install it on the workers to run it on the cluster"
        )


def run_tune(request: EstimateRequest, settings: Settings) -> TuneReport:
    """Measure the workers afresh (and remember it); say how ``request`` would be chunked."""
    executor, _ = choose_executor(request, settings)
    try:
        slots = executor.prepare()
        capacity = measure(executor, slots, rate_book(executor, settings), recalibrate=True)
        return TuneReport(
            mode=executor.mode,
            ran_on=executor.description,
            capacity=capacity,
            choice=choose_chunk_size(request.darts, capacity, wave_chunks=settings.wave_chunks),
        )
    finally:
        executor.close()


def rate_book(
    executor: Executor, settings: Settings, bound: BoundModel | None = None
) -> RateBook | None:
    """Where ``executor``'s rates are kept, if they are worth keeping and there is a cache.

    A model's rates (samples/s) are kept apart from the dart kernel's, per model code
    and parameters.
    """
    if not (executor.rates_worth_keeping and settings.cache_dir):
        return None
    where = executor.where if bound is None else f"{executor.where} {bound.rate_key}"
    return RateBook(settings.cache_dir / "rates.json", cluster=where, version=__version__)


def measure(
    executor: Executor,
    slots: dict[str, int],
    book: RateBook | None,
    recalibrate: bool = False,
    call: ModelCall | None = None,
) -> Capacity:
    """The executor's capacity: from the rate book if fresh, else calibrated (and kept).

    For a model job (``call``) the rates are the model's samples per second.
    """
    if book is not None and not recalibrate:
        known = book.capacity(slots)
        if known is not None:
            return known
    capacity = executor.calibrate(call)
    if book is not None:
        calibrated = [h for h in capacity.hosts if h.source == "calibrated"]
        book.record(calibrated, capacity.task_overhead)
    return capacity


class JobRun:
    """One run of the hub over a job's stages, keeping its record up to date.

    A sweep's jobs (:mod:`mcpi.hub.sweep`) share the ``capacity`` it measured once, are
    chunked for their ``share`` of it (``share`` jobs run at once), and end by the
    sweep's ``deadline``.
    """

    def __init__(
        self,
        executor: Executor,
        notes: list[str],
        request: EstimateRequest,
        settings: Settings,
        progress: Progress,
        book: JobBook,
        record: JobRecord | None,
        bound: BoundModel | None = None,
        *,
        capacity: Capacity | None = None,
        share: int = 1,
        deadline: float | None = None,
        prune: bool = True,
    ) -> None:
        self.executor = executor
        self.bound = bound
        self.notes = notes
        self.request = request
        self.settings = settings
        self.progress = progress
        self.book = book
        self.record = record
        self.target: PrecisionTarget | ModelPrecision | None = request.precision
        if bound is not None and request.half_width is not None:
            self.target = ModelPrecision(
                request.half_width, request.max_samples or 1, bound.output, bound.call.block
            )
        self.trace = Trace()
        self.rates = rate_book(executor, settings, bound)
        self.slots: dict[str, int] = {}
        self.chunking: ChunkChoice | None = None
        self.capacity: Capacity | None = capacity
        self.share = share
        self.deadline = deadline
        #: Whether a new record prunes the book (a sweep prunes once, for all its jobs).
        self.prune = prune
        #: This run's work over all stages: hosts, versions, duplicates, earlier darts.
        self.totals = Totals()

    def run(self) -> JobReport:
        self.slots = self.executor.prepare(self.bound.call if self.bound is not None else None)
        record = self.record or self._new_record()
        if self.record is not None:
            self._check_resumable(record)
        began = time.monotonic()
        deadline = began + self.settings.timeout if self.settings.timeout else None
        if self.deadline is not None:
            deadline = self.deadline
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
        sums, darts = record.counted
        result: Estimate | None = None
        outputs: list[OutputEstimate] = []
        if self.bound is None:
            result = estimate(sums[0], darts)
            record.result = {
                "darts": darts,
                "hits": sums[0],
                "pi": result.pi,
                "ci_low": result.ci_low,
                "ci_high": result.ci_high,
            }
        else:
            outputs = self._outputs(sums, darts)
            record.result = {
                "samples": darts,
                "outputs": {
                    o.name: {
                        "mean": o.mean,
                        "std_error": o.std_error,
                        "ci95": [o.ci_low, o.ci_high],
                    }
                    for o in outputs
                },
            }
        record.status, record.error = DONE, None
        self.book.save(record)
        journal = self.book.journal(record.id)
        if journal is not None:
            journal.remove()
        return self._report(record, result, outputs, wall)

    def _outputs(self, sums: tuple[int, ...], samples: int) -> list[OutputEstimate]:
        assert self.bound is not None
        exact = self.bound.exact
        return [
            output_estimate(name, samples, sums[2 * j], sums[2 * j + 1], exact.get(name))
            for j, name in enumerate(self.bound.call.outputs)
        ]

    def _new_record(self) -> JobRecord:
        request, bound = self.request, self.bound
        asked: dict[str, Any]
        if isinstance(self.target, PrecisionTarget):
            asked = {"precision": self.target.half_width, "max_darts": self.target.max_darts}
        elif isinstance(self.target, ModelPrecision):
            asked = {
                "precision": self.target.half_width,
                "max_samples": self._whole(self.target.max_samples, "the sample bound"),
                "output": self.bound.call.outputs[self.target.output] if self.bound else None,
            }
        else:
            asked = {"darts": self._whole(request.darts, "the job")}
        if request.chunk_size is not None:
            asked["chunk_size"] = self._whole(request.chunk_size, "the chunk size")
        record = JobRecord(
            id=new_job_id(),
            seed=new_seed() if request.seed is None else request.seed,
            mode=self.executor.mode,
            where=self.executor.where,
            request=asked,
            model=bound.record() if bound is not None else None,
        )
        if bound is not None and "darts" in asked:
            asked["samples"] = asked.pop("darts")
        if self.prune:
            self.book.prune()
        # Saved with its first stage, before any chunk is sent (or with its error).
        return record

    def _whole(self, samples: int, what: str) -> int:
        """``samples`` rounded up to whole blocks of the model (noted in the report)."""
        block = self.bound.call.block if self.bound is not None else 1
        whole = -(-samples // block) * block
        if whole != samples:
            self.notes.append(
                f"{what}: {samples:,} samples rounded up to whole blocks of {block:,}: {whole:,}"
            )
        return whole

    def _check_resumable(self, record: JobRecord) -> None:
        if record.where != self.executor.where:
            raise UsageError(
                f"job {record.id} ran on {record.where}; this hub is configured for "
                f"{self.executor.where} (resume it with that cluster's settings)"
            )
        asked = record.request
        if "precision" in asked and self.bound is not None:
            self.target = ModelPrecision(
                asked["precision"], asked["max_samples"], self.bound.output, self.bound.call.block
            )
        elif "precision" in asked:
            self.target = PrecisionTarget(asked["precision"], asked["max_darts"])
        self.notes.append(f"resumed job {record.id}, started {record.created}")

    def _rule(self, record: JobRecord) -> StoppingRule:
        asked = record.request
        return self.target or FixedSize(asked["samples"] if "samples" in asked else asked["darts"])

    def _next_stage(self, record: JobRecord) -> Stage | None:
        """The stage to count next: an unfinished one, a new look, or None when done."""
        if record.stages and not record.stages[-1].counted:
            return record.stages[-1]
        sums, darts = record.counted
        total = self._rule(record).next_total(sums, darts)
        if total is None:
            return None
        stage = Stage(first=darts, darts=total - darts, chunk_size=self._chunk_size(total - darts))
        record.stages.append(stage)
        self.book.save(record)
        return stage

    def _chunk_size(self, darts: int) -> int:
        """The stage's chunk size: the user's (whole blocks), or chosen from measured rates.

        A model's chunks are sized in blocks: the tuner sees blocks per second.
        """
        block = self.bound.call.block if self.bound is not None else 1
        chosen = self.request.chunk_size
        if self.record is not None:
            chosen = self.record.request.get("chunk_size")
        elif chosen:
            chosen = -(-chosen // block) * block
        if chosen:
            return min(int(chosen), darts)
        if self.capacity is None:
            call = self.bound.call if self.bound is not None else None
            self.capacity = measure(self.executor, self.slots, self.rates, call=call)
        self.chunking = choose_chunk_size(
            darts // block,
            self.capacity.shared(self.share).per_block(block),
            wave_chunks=self.settings.wave_chunks,
        )
        if block > 1:
            self.chunking = self.chunking.in_samples(block)
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
        call = self.bound.call if self.bound is not None else None
        try:
            job = Job(id=stage_job_id(record.id, index), seed=record.seed, plan=plan, model=call)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        # Every chunk counted is journaled at once, on the local pool and the cluster
        # alike: a resumed job takes the journal's chunks first, so it finishes even
        # if the result backend lost everything (a rebuilt broker host).
        journal = self.book.journal(record.id)
        earlier = None
        if resuming:
            earlier = journal.read(job.id) if journal is not None else []
        journaled = {r.chunk.index for r in earlier or ()}

        def counted(result: ChunkResult) -> None:
            if journal is not None and result.chunk.index not in journaled:
                journal.append(job.id, result)
            observer.counted(result)

        observer.start(plan.darts)
        try:
            tally = self.executor.run(job, counted, deadline, earlier)
        finally:
            observer.finish()
            if journal is not None:
                journal.close()
        if not tally.complete:
            raise JobFailed(f"only {tally.darts} of {plan.darts} darts were counted")
        if self.rates is not None:
            self.rates.learn(self.slots, tally.hosts)
        # Saved with the next stage, or as done: until then, a resumed job finds the
        # stage's chunks in the journal.
        stage.count(tally.sums, model=self.bound is not None)
        if self.target is not None:
            self.trace.look(stage.first + stage.darts)
        self.totals.absorb(tally)

    def _report(
        self,
        record: JobRecord,
        result: Estimate | None,
        outputs: list[OutputEstimate],
        wall: float,
    ) -> JobReport:
        notes = self.notes
        versions = sorted(self.totals.versions)
        if versions and versions != [__version__]:
            notes.append(f"workers ran mcpi {', '.join(versions)}; this hub is {__version__}")
        target = self.target
        if isinstance(target, ModelPrecision):
            reached = outputs[target.output]
            what = f"precision ±{target.half_width:g} on {reached.name}"
            if reached.half_width <= target.half_width:
                notes.append(f"{what} reached after {len(record.stages)} look(s)")
            else:
                notes.append(
                    f"{what} NOT reached: stopped at the bound of {target.max_samples:,} "
                    "samples (--max-samples)"
                )
        elif target is not None and result is not None:
            if result.half_width <= target.half_width:
                notes.append(
                    f"precision ±{target.half_width:g} reached after {len(record.stages)} look(s)"
                )
            else:
                notes.append(
                    f"precision ±{target.half_width:g} NOT reached: stopped at the "
                    f"bound of {target.max_darts:,} darts (--max-darts)"
                )
        return JobReport(
            job_id=record.id,
            seed=record.seed,
            stages=record.stages,
            mode=self.executor.mode,
            ran_on=self.executor.description,
            estimate=result,
            wall_seconds=wall,
            hosts=host_throughput(self.totals.hosts, wall),
            duplicates=self.totals.duplicates,
            worker_versions=versions,
            chunking=self.chunking,
            capacity=self.capacity,
            notes=notes + self.executor.notes + self.totals.notes,
            precision=self.target,
            outputs=outputs,
            model=record.model,
            resumed=self.record is not None,
            trace=self.trace,
            earlier_darts=self.totals.earlier_darts,
        )


def _outcome(record: JobRecord) -> str:
    result = record.result or {}
    if record.model is not None:
        return f"{record.kind} from {result.get('samples'):,} samples, {record.updated}"
    return f"π ≈ {result.get('pi')} from {result.get('darts'):,} darts, {record.updated}"
