"""A sweep: many jobs submitted together, run at once, each its own job.

A scientist's pattern is rarely one job: it is a model over 50 parameter values, or
the same job over several seeds. Run one after another, each small job leaves the
cluster idle while the hub collects its last chunk and starts the next; run at once,
the jobs' chunks fill every slot, as the chunks of one big job would.

Each job of a sweep is a job like any other: its own record (resumable alone), seed,
chunks and exact result, equal bit for bit to the same job run alone, since what a job
counts does not depend on how it is chunked or what runs beside it. What the jobs
share is what costs time and changes nothing: one preflight of the cluster, one
measurement of its rates (a model's cost per sample seldom depends on its
parameters), and its slots, each job's chunks sized for its share of them.

The whole sweep is checked before anything runs: one bad parameter set refuses all of
it, in one line naming the job. A job that fails while running does not stop the
others: each outcome is reported, the failures with their reasons.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from mcpi.core.job import new_seed
from mcpi.core.tuning import Capacity
from mcpi.errors import JobTimeout, McpiError, UsageError
from mcpi.hub.binding import BoundModel, bind
from mcpi.hub.executor import choose_executor
from mcpi.hub.progress import NoProgress, SweepProgress, Throttled
from mcpi.hub.records import JobBook
from mcpi.hub.report import JobReport
from mcpi.hub.request import JobRequest
from mcpi.hub.run import JobRun, check_runs_there, measure, rate_book
from mcpi.hub.warm import Warm
from mcpi.settings import Settings

#: Jobs running at once per slot of the cluster (or pool): enough that a slot freed by
#: one job's last chunk finds another's first one queued.
JOBS_PER_SLOT = 2
#: ... and at most this many at once (each is a thread of the hub, polling its results).
MAX_JOBS_AT_ONCE = 64


@dataclass(frozen=True)
class SweepOutcome:
    """One job of a sweep: what was asked, and its report or the error that ended it."""

    request: JobRequest
    report: JobReport | None = None
    error: McpiError | None = None
    #: When the job started and ended, in seconds from the sweep's start.
    started: float = 0.0
    ended: float = 0.0


def describe(request: JobRequest) -> str:
    """A sweep job in a few words: its parameters, else its seed."""
    if request.params:
        return ", ".join(f"{k}={v!r}" for k, v in request.params.items())
    return f"seed {request.seed}"


def check_sweep(requests: Sequence[JobRequest]) -> list[BoundModel]:
    """Every job of the sweep, checked before any runs; one bad job refuses them all."""
    if not requests:
        raise UsageError("a sweep needs at least one job")
    if any(r.resume is not None for r in requests):
        raise UsageError("a sweep starts new jobs: resume a job of one alone, with --resume")
    if any(r.refine for r in requests):
        raise UsageError("--refine runs a second job after the first: run the point alone")
    bound: list[BoundModel] = []
    for k, request in enumerate(requests, 1):
        try:
            bound.append(
                bind(
                    request.model,
                    dict(request.params),
                    request.output,
                    control=request.control,
                    antithetic=request.antithetic,
                )
            )
        except UsageError as exc:
            raise UsageError(
                f"sweep job {k} of {len(requests)} ({describe(request)}): {exc}; nothing was run"
            ) from None
    return bound


def with_seeds(requests: Sequence[JobRequest]) -> list[JobRequest]:
    """The jobs given no seed share one fresh seed: common random numbers, so that the
    differences between a sweep's points are not drowned in independent noise."""
    common = new_seed()
    return [r if r.seed is not None else replace(r, seed=common) for r in requests]


def run_sweep(
    requests: Sequence[JobRequest],
    settings: Settings,
    warm: Warm | None = None,
    line: Throttled | None = None,
) -> list[SweepOutcome]:
    """Run every job of ``requests`` at once where ``settings`` say (or on ``warm``).

    The outcomes come in the order of ``requests``. Raises (running nothing) if any job
    is invalid, or if the cluster cannot run the sweep at all (unreachable, no
    workers, a model missing). ``line`` shows the whole sweep's progress: its jobs
    ended and samples counted.
    """
    bound = check_sweep(requests)
    requests = with_seeds(requests)
    own = warm is None
    if warm is None:
        warm = Warm(*choose_executor(requests[0], settings))
    try:
        return _Sweep(requests, bound, settings, warm, line).run()
    finally:
        if own:
            warm.close()


class _Sweep:
    def __init__(
        self,
        requests: list[JobRequest],
        bound: list[BoundModel],
        settings: Settings,
        warm: Warm,
        line: Throttled | None = None,
    ) -> None:
        self.requests, self.bound, self.settings, self.warm = requests, bound, settings, warm
        self.line = line
        self.progress: SweepProgress | None = None
        self.book = JobBook.of(settings)
        self.outcomes: list[SweepOutcome | None] = [None] * len(requests)
        self.bugs: list[BaseException] = []
        self.stop = threading.Event()
        self.capacity: Capacity | None = None
        self.share = 1
        self.deadline: float | None = None
        self.began = time.monotonic()

    def run(self) -> list[SweepOutcome]:
        first = self.bound[0]
        executor = self.warm.job()
        for each in self.bound:
            check_runs_there(each, executor)
        # One preflight and one measurement for all: refused here, nothing has run.
        slots = executor.prepare(first.call, first.source)
        self.share = min(len(self.requests), MAX_JOBS_AT_ONCE, JOBS_PER_SLOT * sum(slots.values()))
        if any(r.chunk_size is None for r in self.requests):
            book = rate_book(executor, self.settings, first)
            self.capacity = measure(executor, slots, book, first.call)
        if self.settings.timeout:
            self.deadline = time.monotonic() + self.settings.timeout
        self.book.prune()
        if self.line is not None:
            planned = [r.samples or r.max_samples or 0 for r in self.requests]
            self.progress = SweepProgress(self.line, planned)
        todo: queue.SimpleQueue[int] = queue.SimpleQueue()
        for k in range(len(self.requests)):
            todo.put(k)
        threads = [
            threading.Thread(target=self._work, args=(todo,), daemon=True, name=f"sweep-{n}")
            for n in range(self.share)
        ]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():  # joined in slices, so Ctrl-C is seen at once
                    thread.join(0.2)
        except BaseException:
            self.stop.set()  # no job starts any more; the running ones end with the hub
            raise
        if self.progress is not None:
            self.progress.finish()
        if self.bugs:
            raise self.bugs[0]
        return [o for o in self.outcomes if o is not None]

    def _work(self, todo: queue.SimpleQueue[int]) -> None:
        while not self.stop.is_set():
            try:
                k = todo.get_nowait()
            except queue.Empty:
                return
            started = time.monotonic() - self.began
            outcome = self._one(k)
            if self.progress is not None:
                self.progress.job_ended(k)
            ended = time.monotonic() - self.began
            self.outcomes[k] = replace(outcome, started=started, ended=ended)

    def _one(self, k: int) -> SweepOutcome:
        request, bound = self.requests[k], self.bound[k]
        if self.deadline is not None and time.monotonic() >= self.deadline:
            error = JobTimeout("the sweep's deadline passed before this job started")
            return SweepOutcome(request, error=error)
        executor = self.warm.job()
        run = JobRun(
            executor,
            list(self.warm.why),
            request,
            self.settings,
            NoProgress() if self.progress is None else self.progress.job(k),
            self.book,
            None,
            bound,
            capacity=self.capacity if request.chunk_size is None else None,
            share=self.share,
            deadline=self.deadline,
            prune=False,
        )
        try:
            return SweepOutcome(request, report=run.run())
        except McpiError as exc:
            return SweepOutcome(request, error=exc)
        except BaseException as exc:  # noqa: BLE001 -- a bug: the sweep stops, and raises it
            self.bugs.append(exc)
            self.stop.set()
            return SweepOutcome(request, error=McpiError(f"{type(exc).__name__}: {exc}"))
