"""The hub: turns a request into a job of a model, runs it stage by stage, and reports.

One pipeline for every job: π is the model ``pi`` (``estimate`` is its view), a user's
model is another. With a cluster configured the job runs on the Celery workers; without
one, or with ``local=True``, on the local process pool
(:func:`~mcpi.hub.executor.choose_executor`). The hub owns what persists: every job is
recorded (:mod:`mcpi.hub.records`) so that a crashed one can be resumed, and a
cluster's measured rates are kept in the rate book (:mod:`mcpi.hub.rates`) so that
later jobs need not calibrate.

When a job stops is one rule (:mod:`mcpi.core.precision`): a fixed size is one stage;
a precision target adds a stage at a time until the Chow–Robbins rule says stop.
Sizes, stages and chunks are whole blocks of the model's block size (a request that is
not is rounded up, and the report says so), chunk results are exact sums, and the
rates that size the chunks are measured for the model (its cost per sample can be
anything from nanoseconds to seconds), and kept per model in the rate book.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from mcpi import __version__
from mcpi.core.chunk import ChunkResult
from mcpi.core.distribution import QuantileEstimate, rule_variance, target_half_width
from mcpi.core.exact import OutputEstimate
from mcpi.core.job import Job, new_job_id, new_seed
from mcpi.core.messages import result_bytes_guess
from mcpi.core.model import ModelCall
from mcpi.core.plan import MAX_DARTS, Plan
from mcpi.core.precision import FixedSize, Precision, ReplicatePrecision, StoppingRule, Sums
from mcpi.core.sampler import (
    MC,
    PRECISION_REPLICATES,
    RQMC,
    Sampler,
    power_of_two_at_least,
    power_of_two_at_most,
)
from mcpi.core.sensitivity import Sensitivity
from mcpi.core.stats import host_throughput
from mcpi.core.tallies import NO_TALLIES, Tallies
from mcpi.core.tally import Totals
from mcpi.core.tuning import Capacity, ChunkChoice, choose_chunk_size
from mcpi.errors import JobFailed, McpiError, UsageError
from mcpi.hub.binding import BoundModel, Distribution, bind
from mcpi.hub.executor import Executor, choose_executor
from mcpi.hub.live import LiveState
from mcpi.hub.progress import Progress, Tee
from mcpi.hub.rates import RateBook
from mcpi.hub.records import DONE, FAILED, JobBook, JobRecord, RecordError, Stage, stage_job_id
from mcpi.hub.refine import refined
from mcpi.hub.report import JobReport, TuneReport
from mcpi.hub.request import VIEWS, JobRequest
from mcpi.hub.trace import Trace
from mcpi.hub.warm import Warm
from mcpi.settings import Settings


def run_job(
    request: JobRequest, settings: Settings, progress: Progress, warm: Warm | None = None
) -> JobReport:
    """Run the job ``request`` describes where ``settings`` say, reporting to ``progress``.

    Every job is recorded (see :mod:`mcpi.hub.records`); ``request.resume`` finishes a
    recorded one where it ran, with its seed and stages. With ``warm`` (a session's
    executor, :mod:`mcpi.hub.warm`) the job runs there, and it stays open after.
    """
    book = JobBook.of(settings)
    record = None
    if request.resume is not None:
        record = resumable(book, request)
        request = replace(
            request, local=record.mode == "local", model=record.model.get("source", "")
        )
    bound = bind(
        request.model,
        dict(request.params),
        # A resumed job's precision targets the output it started with.
        record.request.get("output") if record is not None else request.output,
        recorded=record.model if record is not None else None,
        sensitivity=request.view.sensitivity,
        control=request.control if record is None else None,
        antithetic=request.antithetic and record is None,
    )
    executor: Executor
    if warm is None:
        executor, notes = choose_executor(request, settings)
    else:
        executor = warm.job()
        notes = list(warm.why)
    try:
        check_runs_there(bound, executor)
        if record is not None:
            notes = []  # it runs where it started; the report says it was resumed
        report = JobRun(executor, notes, request, settings, progress, book, record, bound).run()
    finally:
        executor.close()
    if request.refine:
        return refined(request, report, lambda again: run_job(again, settings, progress, warm))
    return report


def resumable(book: JobBook, request: JobRequest) -> JobRecord:
    """The record ``request`` resumes, refused in one line if it cannot be resumed so."""
    assert request.resume is not None
    try:
        record = book.load(request.resume)
    except RecordError as exc:
        raise UsageError(str(exc)) from None
    if record.status == DONE:
        raise UsageError(f"job {record.id} is finished already: {outcome(record)}")
    if record.view != request.view.name:
        raise UsageError(
            f"job {record.id} is a {record.kind} job: finish it with "
            f"`mcpi-hub {record.view} --resume {record.id}`"
        )
    return record


def check_runs_there(bound: BoundModel, executor: Executor) -> None:
    """Refuse a model found in a local file or module anywhere but on the local pool."""
    if bound.local_only and executor.mode != "local":
        raise UsageError(
            f"model {bound.source} is a local file or module: it runs on the local pool "
            "only (--local); install it on the workers to run it on the cluster"
        )


def run_tune(request: JobRequest, settings: Settings) -> TuneReport:
    """Measure the workers afresh for ``request``'s model (and remember it); say how the
    job it asks for would be chunked."""
    bound = bind(request.model, dict(request.params))
    executor, _ = choose_executor(request, settings)
    try:
        slots = executor.prepare(bound.call, bound.source)
        book = rate_book(executor, settings, bound)
        capacity = measure(executor, slots, book, bound.call, recalibrate=True)
        size = request.samples or 1
        return TuneReport(
            mode=executor.mode,
            ran_on=executor.description,
            capacity=capacity,
            choice=choose_chunk_size(
                size,
                capacity,
                wave_chunks=settings.wave_chunks,
                result_bytes=result_bytes_guess(bound.call.width),
            ),
        )
    finally:
        executor.close()


def rate_book(executor: Executor, settings: Settings, bound: BoundModel) -> RateBook | None:
    """Where ``executor``'s rates for ``bound``'s model are kept, if they are worth
    keeping and there is a cache: per model code and parameters."""
    if not (executor.rates_worth_keeping and settings.cache_dir):
        return None
    where = f"{executor.where} {bound.rate_key}"
    return RateBook(settings.cache_dir / "rates.json", cluster=where, version=__version__)


def measure(
    executor: Executor,
    slots: dict[str, int],
    book: RateBook | None,
    call: ModelCall,
    recalibrate: bool = False,
) -> Capacity:
    """The executor's capacity for ``call``'s model (samples per second): from the rate
    book if fresh, else calibrated (and kept). The task overhead of a cluster the book
    knows from another model is not measured again: it is the transport's."""
    overhead = None
    if book is not None and not recalibrate:
        known = book.capacity(slots)
        if known is not None:
            return known
        overhead = book.known_overhead(executor.where)
    capacity = executor.calibrate(call, None if overhead is None else overhead.seconds)
    if book is not None:
        calibrated = [h for h in capacity.hosts if h.source == "calibrated"]
        book.record(
            calibrated,
            capacity.task_overhead,
            overhead_at=None if overhead is None else overhead.at,
        )
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
        request: JobRequest,
        settings: Settings,
        progress: Progress,
        book: JobBook,
        record: JobRecord | None,
        bound: BoundModel,
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
        self.view = VIEWS[record.view] if record is not None else request.view
        self.settings = settings
        self.progress = progress
        self.book = book
        self.record = record
        self.trace = Trace()
        self.rates = rate_book(executor, settings, bound)
        self.slots: dict[str, int] = {}
        self.chunking: ChunkChoice | None = None
        self.capacity: Capacity | None = capacity
        self.share = share
        self.deadline = deadline
        #: Whether a new record prunes the book (a sweep prunes once, for all its jobs).
        self.prune = prune
        #: This run's work over all stages: hosts, versions, duplicates, earlier samples.
        self.totals = Totals()
        self.rule: StoppingRule = FixedSize(1)
        self.sampler: Sampler = MC
        self.tallies: Tallies = NO_TALLIES
        #: What the job's record says was asked (set when the job starts or resumes).
        self.record_request: dict[str, Any] = {}
        #: What is out of the running stage, for whoever watches (set when the job starts).
        self.live = LiveState(None)

    def run(self) -> JobReport:
        self.slots = self.executor.prepare(self.bound.call, self.bound.source)
        record = self.record or self._new_record()
        if self.record is not None:
            self._check_resumable(record)
        self.sampler = self._sampler(record)
        self.tallies = self.bound.tallies(record.request, self.sampler)
        self.record_request = record.request
        self.live = LiveState(self.book.live(record.id))
        self.rule = self._rule(record)
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
            outputs = self._outputs(record)
            sums, samples = record.counted
            distribution = self.bound.distribution(
                sums, samples, self.sampler, self.tallies, record.request
            )
            sensitivity = self.bound.indices(sums, samples, self.sampler, self.group)
        except BaseException as exc:
            # Left "running" (or "failed" with the reason) and resumable.
            if isinstance(exc, McpiError):
                record.status, record.error = FAILED, str(exc)
            self.book.save(record)
            self.live.ended(self.notes + self.executor.notes)
            raise
        wall = time.monotonic() - began
        record.result = {
            "samples": record.counted[1],
            "outputs": {
                o.name: {"mean": o.mean, "std_error": o.std_error, "ci95": [o.ci_low, o.ci_high]}
                for o in outputs
            },
        }
        if sensitivity is not None:
            record.result["sensitivity"] = sensitivity.to_json()
        report = self._report(record, outputs, distribution, sensitivity, wall)
        record.result["notes"] = report.notes
        record.status, record.error = DONE, None
        self.book.save(record)
        journal = self.book.journal(record.id)
        if journal is not None:
            journal.remove()
        self.live.ended(report.notes)
        return report

    @property
    def group(self) -> int:
        """Integers per group of the job's sums (see :attr:`mcpi.core.job.Job.group`)."""
        return 2 * len(self.bound.call.outputs) + self.tallies.slots

    def _outputs(self, record: JobRecord) -> list[OutputEstimate]:
        sums, samples = record.counted
        try:
            return self.bound.estimates(sums, samples, self.sampler, self.group)
        except ValueError as exc:  # a binary output whose sums are not 0s and cs
            raise JobFailed(f"model {self.bound.call.name}: {exc}") from None

    def _new_record(self) -> JobRecord:
        request, bound = self.request, self.bound
        replicates = request.replicates
        if replicates is None and request.precision is not None:
            replicates = PRECISION_REPLICATES
        self.sampler = bound.sampler(request.sampler or request.view.default_sampler, replicates)
        asked: dict[str, object]
        if request.precision is not None:
            assert request.max_samples is not None
            bound_samples = request.max_samples
            if self.sampler is MC:  # RQMC's rule rounds its bound down to whole replicates
                bound_samples = self._whole(bound_samples, "the sample bound")
            asked = {
                "precision": request.precision,
                "max_samples": bound_samples,
                # A design job's target is every index of its analysed output.
                "output": bound.call.sensitivity or bound.call.outputs[bound.output],
            }
            if request.quantile_target is not None:
                asked["quantile_target"] = request.quantile_target
        else:
            assert request.samples is not None
            asked = {"samples": self._whole(request.samples, "the job")}
        if request.chunk_size is not None:
            asked["chunk_size"] = self._whole_chunk(request.chunk_size)
        asked["sampler"] = _sampler_request(self.sampler)
        asked |= self._beyond_the_mean()
        self.bound.tallies(asked, self.sampler)  # refused now, before anything runs
        record = JobRecord(
            id=new_job_id(),
            seed=new_seed() if request.seed is None else request.seed,
            mode=self.executor.mode,
            where=self.executor.where,
            model=bound.record(),
            request=asked,
            view=self.view.name,
        )
        if self.prune:
            self.book.prune()
        # Saved with its first stage, before any chunk is sent (or with its error).
        return record

    def _beyond_the_mean(self) -> dict[str, object]:
        """What the request asks beyond the mean, as its record keeps it (a quantile's
        output named: the request's ``output``, else the first)."""
        request, bound = self.request, self.bound
        asked: dict[str, object] = {}
        if request.histograms:
            asked["histograms"] = [h.to_json() for h in request.histograms]
        if request.quantiles:
            default = bound.call.outputs[bound.output]
            asked["quantiles"] = [{"output": o or default, "p": p} for o, p in request.quantiles]
        if request.exceed:
            asked["exceed"] = [{"output": o, "threshold": t} for o, t in request.exceed]
        return asked

    def _whole(self, samples: int, what: str) -> int:
        """``samples`` rounded up to whole blocks of the model, or under randomized QMC to
        the replicates times a power of two points (noted in the report)."""
        sampler = self.sampler
        if isinstance(sampler, RQMC):
            points = power_of_two_at_least(-(-samples // sampler.replicates))
            whole = sampler.replicates * points
            if whole > MAX_DARTS:
                raise UsageError(
                    f"{what}: {samples:,} samples round up to {sampler.replicates} replicates "
                    f"of 2^{points.bit_length() - 1} points, more than a job's {MAX_DARTS:.0e}"
                )
            unit = f"{sampler.replicates} replicates of a power of two points"
        else:
            block = self.bound.call.block
            whole = -(-samples // block) * block
            unit = f"whole blocks of {block:,}"
        if whole != samples:
            self.notes.append(f"{what}: {samples:,} samples rounded up to {unit}: {whole:,}")
        return whole

    def _whole_chunk(self, chunk_size: int) -> int:
        """The user's chunk size, in whole blocks, or under randomized QMC a power of two
        of whole batches (so that a chunk is part of one replicate's points, and the
        model sees the same arrays however the job is split)."""
        sampler = self.sampler
        if not isinstance(sampler, RQMC):
            return self._whole(chunk_size, "the chunk size")
        chosen = max(power_of_two_at_most(chunk_size), sampler.batch)
        if chosen != chunk_size:
            self.notes.append(
                f"the chunk size: {chunk_size:,} points rounded to a power of two, in whole "
                f"batches of {sampler.batch:,}: {chosen:,}"
            )
        return chosen

    def _check_resumable(self, record: JobRecord) -> None:
        if record.where != self.executor.where:
            raise UsageError(
                f"job {record.id} ran on {record.where}; this hub is configured for "
                f"{self.executor.where} (resume it with that cluster's settings)"
            )
        self.notes.append(f"resumed job {record.id}, started {record.created}")

    def _sampler(self, record: JobRecord) -> Sampler:
        """The job's sampler, from what its record says was asked (mcpi 0.2.0's records,
        before randomized QMC, ran plain Monte Carlo)."""
        asked = record.request.get("sampler") or {"kind": MC.kind}
        return self.bound.sampler(asked.get("kind", MC.kind), asked.get("replicates"))

    def _rule(self, record: JobRecord) -> StoppingRule:
        """The job's stopping rule, from what its record says was asked."""
        asked, bound = record.request, self.bound
        if "precision" not in asked:
            return FixedSize(asked["samples"])
        output = bound.output
        quantile = asked.get("quantile_target")
        if isinstance(self.sampler, RQMC):
            half_width_of: Callable[[Sums, int], float] | None = None
            if bound.call.sensitivity is not None:
                half_width_of = self._widest_index
            elif quantile is not None:
                half_width_of = self._quantile_half_width
            elif bound.call.control is not None:
                half_width_of = self._half_width
            try:
                return ReplicatePrecision(
                    asked["precision"],
                    asked["max_samples"],
                    self.sampler,
                    self.group,
                    output,
                    half_width_of=half_width_of,
                )
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        variance_of: Callable[[Sums, int], float] | None = None
        if quantile is not None:
            variance_of = self._quantile_variance
        elif bound.call.control is not None:
            variance_of = self._residual_variance
        try:
            return Precision(
                asked["precision"],
                asked["max_samples"],
                output,
                bound.call.block,
                binary=None if variance_of else bound.binary(output),
                variance_of=variance_of,
            )
        except ValueError as exc:  # e.g. a half-width no narrower than a binary output's range
            raise UsageError(f"output {bound.call.outputs[output]}: {exc}") from None

    def _widest_index(self, sums: Sums, samples: int) -> float:
        """The widest 95 % half-width of a design job's Sobol' indices at a look."""
        found = self.bound.indices(sums, samples, self.sampler, self.group)
        assert found is not None
        return found.widest

    def _targeted(self, sums: Sums, samples: int) -> OutputEstimate:
        """The targeted output's estimate at a look, as the report would give it."""
        return self.bound.estimates(sums, samples, self.sampler, self.group)[self.bound.output]

    def _half_width(self, sums: Sums, samples: int) -> float:
        return self._targeted(sums, samples).half_width

    def _targeted_quantile(self, sums: Sums, samples: int) -> QuantileEstimate:
        """The quantile a precision targets (``--output NAME@P``) at a look."""
        found = self.bound.distribution(
            sums, samples, self.sampler, self.tallies, self.record_request
        )
        name = self.bound.call.outputs[self.bound.output]
        p = self.record_request["quantile_target"]
        return next(q for q in found.quantiles if (q.output, q.p) == (name, p))

    def _quantile_half_width(self, sums: Sums, samples: int) -> float:
        """The targeted quantile's half-width at a look, as the rule sees it
        (:func:`mcpi.core.distribution.target_half_width`)."""
        return target_half_width(self._targeted_quantile(sums, samples))

    def _quantile_variance(self, sums: Sums, samples: int) -> float:
        """Plain Monte Carlo: :func:`mcpi.core.distribution.rule_variance` at a look."""
        return rule_variance(self._targeted_quantile(sums, samples), samples)

    def _residual_variance(self, sums: Sums, samples: int) -> float:
        """A control variate's per-sample residual variance s_e² at a look (its standard
        error is √(s_e²/n): :func:`mcpi.core.control.control_estimate`)."""
        return self._targeted(sums, samples).std_error ** 2 * samples

    def _next_stage(self, record: JobRecord) -> Stage | None:
        """The stage to count next: an unfinished one, a new look, or None when done."""
        if record.stages and not record.stages[-1].counted:
            return record.stages[-1]
        sums, samples = record.counted
        total = self.rule.next_total(sums, samples)
        if total is None:
            return None
        size = total - samples
        stage = Stage(first=samples, samples=size, chunk_size=self._chunk_size(record, size))
        record.stages.append(stage)
        self.book.save(record)
        return stage

    def _chunk_size(self, record: JobRecord, samples: int) -> int:
        """The stage's chunk size: the user's (whole blocks), or chosen from measured rates.

        A model's chunks are sized in blocks: the tuner sees blocks per second.
        """
        sampler = self.sampler
        # Under randomized QMC a chunk is a power of two dividing a replicate's points.
        most = sampler.points(samples) if isinstance(sampler, RQMC) else samples
        block = 1 if isinstance(sampler, RQMC) else self.bound.call.block
        chosen = record.request.get("chunk_size")
        if chosen:
            return min(int(chosen), most)  # RQMC: a power of two of whole batches, or less
        if self.capacity is None:
            self.capacity = measure(self.executor, self.slots, self.rates, self.bound.call)
        self.chunking = choose_chunk_size(
            samples // block,
            self.capacity.shared(self.share).per_block(block),
            wave_chunks=self.settings.wave_chunks,
        )
        if block > 1:
            self.chunking = self.chunking.in_samples(block)
        if isinstance(sampler, RQMC):
            return min(max(power_of_two_at_most(self.chunking.chunk_size), sampler.batch), most)
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
            plan = Plan(stage.samples, stage.chunk_size, stage.first)
            job = Job(
                stage_job_id(record.id, index),
                record.seed,
                plan,
                self.bound.call,
                self.sampler,
                self.tallies,
            )
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
            self.live.counted()

        observer.start(plan.darts)
        self.live.stage(index, plan.chunk_count, self.notes + self.executor.notes)
        try:
            tally = self.executor.run(job, counted, deadline, earlier, self.live.busy)
        finally:
            observer.finish()
            self.live.stage_ended()
            if journal is not None:
                journal.close()
        if not tally.complete:
            raise JobFailed(f"only {tally.darts} of {plan.darts} darts were counted")
        if self.rates is not None:
            self.rates.learn(self.slots, tally.hosts)
        # Saved with the next stage, or as done: until then, a resumed job finds the
        # stage's chunks in the journal.
        stage.sums = tally.sums
        if isinstance(self.rule, Precision | ReplicatePrecision):
            self.trace.look(stage.first + stage.samples)
        self.totals.absorb(tally)

    def _report(
        self,
        record: JobRecord,
        outputs: list[OutputEstimate],
        distribution: Distribution,
        sensitivity: Sensitivity | None,
        wall: float,
    ) -> JobReport:
        notes = self.notes
        versions = sorted(self.totals.versions)
        if versions and versions != [__version__]:
            notes.append(f"workers ran mcpi {', '.join(versions)}; this hub is {__version__}")
        if self.bound.call.antithetic:
            samples = record.counted[1]
            notes.append(
                f"antithetic pairs: each of the {samples:,} samples is the mean of the model "
                f"at u and at 1 - u ({2 * samples:,} model evaluations)"
            )
        rule = self.rule if isinstance(self.rule, Precision | ReplicatePrecision) else None
        quantile = record.request.get("quantile_target")
        target = None
        if rule is not None and quantile is not None:
            name = outputs[rule.output].name
            target = next(q for q in distribution.quantiles if (q.output, q.p) == (name, quantile))
            notes.append(self._quantile_note(rule, target, len(record.stages)))
        elif rule is not None and sensitivity is not None:
            notes.append(self._precision_note(rule, sensitivity.widest, len(record.stages)))
        elif rule is not None:
            reached = outputs[rule.output]
            notes.append(
                self._precision_note(rule, reached.half_width, len(record.stages), reached.name)
            )
        return JobReport(
            job_id=record.id,
            seed=record.seed,
            stages=record.stages,
            mode=self.executor.mode,
            ran_on=self.executor.description,
            outputs=outputs,
            model=record.model,
            view=self.view,
            wall_seconds=wall,
            hosts=host_throughput(self.totals.hosts, wall),
            duplicates=self.totals.duplicates,
            largest_message=self.totals.largest_message,
            worker_versions=versions,
            chunking=self.chunking,
            capacity=self.capacity,
            notes=notes + self.executor.notes + self.totals.notes,
            precision=rule,
            resumed=self.record is not None,
            trace=self.trace,
            earlier_samples=self.totals.earlier_darts,
            sampler=self.sampler,
            distribution=distribution,
            sensitivity=sensitivity,
            target_quantile=target,
        )

    def _quantile_note(
        self, rule: Precision | ReplicatePrecision, found: QuantileEstimate, looks: int
    ) -> str:
        """Whether a precision on a quantile's interval was met, and if the histogram
        stopped it short, that more samples could not have narrowed it."""
        half_width = (found.ci_high - found.ci_low) / 2
        what = f"{found.output}@{found.p:g}"
        stuck = found.bin_limited or not math.isfinite(half_width)
        if half_width > rule.half_width and stuck:
            return (
                f"precision ±{rule.half_width:g} on {what} NOT reached: its interval is as "
                "narrow as the histogram allows (--refine, or finer --hist bins there, "
                "would narrow it)"
            )
        return self._precision_note(rule, half_width, looks, what)

    def _precision_note(
        self, rule: Precision | ReplicatePrecision, reached: float, looks: int, output: str = ""
    ) -> str:
        """Whether the target was met: on ``output``'s half-width ``reached``, or (no
        output) on the widest of a design job's indices."""
        view = self.view
        what = f"precision ±{rule.half_width:g}"
        if not output:
            what += " on every index"
        elif view.names_output:
            what += f" on {output}"
        if reached <= rule.half_width:
            return f"{what} reached after {looks} look(s)"
        widest = "" if output else f" (widest ±{reached:.2g})"
        return (
            f"{what} NOT reached{widest}: stopped at the bound of {rule.bound:,} {view.unit} "
            f"({view.bound_flag})"
        )


def _sampler_request(sampler: Sampler) -> dict[str, object]:
    """What a record keeps of a job's sampler (its dimensions follow from the model)."""
    if isinstance(sampler, RQMC):
        return {"kind": sampler.kind, "replicates": sampler.replicates}
    return {"kind": sampler.kind}


def outcome(record: JobRecord) -> str:
    """A finished job's result in a line, for the message that it is finished already."""
    result: dict[str, Any] = record.result or {}
    samples = result.get("samples", 0)
    if record.view == "estimate":
        outputs: dict[str, dict[str, Any]] = result.get("outputs", {})
        mean = next(iter(outputs.values()), {}).get("mean")
        return f"π ≈ {mean} from {samples:,} darts, {record.updated}"
    if record.view == "sensitivity":
        return f"{record.kind} from {samples:,} points, {record.updated}"
    return f"{record.kind} from {samples:,} samples, {record.updated}"
