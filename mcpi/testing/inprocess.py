"""An executor for the hub's tests: every chunk computed in the calling thread, with faults.

:class:`InProcess` implements the hub's executor seam (:class:`mcpi.hub.executor.Executor`)
with the real chunk function (:func:`mcpi.core.chunk.compute_chunk` on the model the job
names) and the real tally (:class:`mcpi.core.tally.Collector`), but no processes,
broker or backend: the hub's logic (stages, precision targets, records and journals,
resume, sweeps, warm sessions, failures) runs in milliseconds, in the pure test tier,
as dask tests its adaptive policy without a cluster. The real-service tests stay; this
adds fast coverage of what lies above the seam.

Its capacity is declared, not measured (hosts, slots, a rate), so chunking is
deterministic; chunks are spread over the declared hosts in turn. :class:`Faults`
makes chunks fail, wait, arrive twice or contradict themselves, or the hub stop
mid-job, and :attr:`InProcess.computed` records every chunk computed, so that a test
can say what was recomputed and what was not.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from mcpi import models
from mcpi.core.chunk import ChunkResult, compute_chunk
from mcpi.core.design import runnable
from mcpi.core.job import Job
from mcpi.core.messages import decode_job, decode_result, encode_job, encode_result
from mcpi.core.model import ModelCall, ModelError
from mcpi.core.tally import Busy, Collector, JobTally, TallyError, ignore_busy
from mcpi.core.tuning import Capacity, HostRate
from mcpi.errors import JobFailed, JobTimeout, ModelMissing


class HubStopped(BaseException):
    """The hub stopped mid-job (as if killed): raised by :attr:`Faults.stop_after`.

    A BaseException, like the KeyboardInterrupt of a user's Ctrl-C: nothing in the hub
    may take it for a job's failure.
    """


@dataclass
class Faults:
    """What goes wrong while a job runs, by chunk index (in every stage of every job).

    * ``fail``: the chunk fails (its task raised), with this message;
    * ``delay``: seconds each computation of the chunk takes longer;
    * ``duplicate``: the chunk's result arrives twice (a redelivery);
    * ``contradict``: a second copy of the chunk arrives with other sums (a broken host);
    * ``lose``: the chunk's first computation is lost (its worker died) and it is
      computed again;
    * ``stop_after``: the hub stops (:class:`HubStopped`) once this many chunks were
      counted in this executor, as a killed hub would.
    * ``missing``: models the workers lack (:meth:`InProcess.prepare` refuses them).
    """

    fail: Mapping[int, str] = field(default_factory=dict)
    delay: Mapping[int, float] = field(default_factory=dict)
    duplicate: set[int] = field(default_factory=set)
    contradict: set[int] = field(default_factory=set)
    lose: set[int] = field(default_factory=set)
    stop_after: int | None = None
    missing: set[str] = field(default_factory=set)


class InProcess:
    """Chunks computed in the calling thread, on ``hosts`` (name: slots) at ``rate``
    samples per slot-second (as measured, for chunking), with ``faults``.

    Jobs may run from several threads at once (a sweep): each computes its own chunks.
    """

    mode = "local"
    where = "in-process"
    rates_worth_keeping = False

    def __init__(
        self,
        hosts: Mapping[str, int] | None = None,
        rate: float = 1e8,
        task_overhead: float = 0.001,
        faults: Faults | None = None,
    ) -> None:
        self.hosts = dict(hosts or {"host-a": 2})
        self.rate = rate
        self.task_overhead = task_overhead
        self.faults = faults or Faults()
        self.notes: list[str] = []
        #: (job id, chunk index) of every chunk computed, in order.
        self.computed: list[tuple[str, int]] = []
        #: How often each part of the seam was called.
        self.calls: dict[str, int] = {"prepare": 0, "calibrate": 0, "run": 0, "close": 0}
        self.sources: dict[str, str] = {}
        self._counted = 0
        self._lock = threading.Lock()

    @property
    def description(self) -> str:
        slots = sum(self.hosts.values())
        return f"in-process executor: {len(self.hosts)} host(s), {slots} slot(s)"

    def prepare(self, model: ModelCall, source: str | None = None) -> dict[str, int]:
        self._call("prepare")
        if model.name in self.faults.missing:
            raise ModelMissing(f"model {model.name} is not on every worker (injected)")
        if source is not None:
            self.sources[model.name] = source
        return dict(self.hosts)

    def calibrate(self, model: ModelCall, task_overhead: float | None = None) -> Capacity:
        self._call("calibrate")
        hosts = [HostRate(host, slots, self.rate) for host, slots in self.hosts.items()]
        return Capacity.of(hosts, self.task_overhead if task_overhead is None else task_overhead)

    def run(
        self,
        job: Job,
        counted: Callable[[ChunkResult], None],
        deadline: float | None,
        earlier: Sequence[ChunkResult] | None,
        busy: Callable[[Busy], None] = ignore_busy,
    ) -> JobTally:
        self._call("run")
        collector = Collector(job.plan, job.width, counted, job.shape)
        done = collector.resume(earlier or ())
        model = models.find(self.sources.get(job.model.name, job.model.name))
        try:
            model = runnable(model, job.model)
        except ModelError as exc:
            raise JobFailed(str(exc)) from None
        hosts = [host for host, slots in self.hosts.items() for _ in range(slots)]
        faults = self.faults
        job = decode_job(json.loads(json.dumps(encode_job(job))))  # as a worker receives it
        try:
            for chunk in job.plan.chunks():
                if chunk.index in done:
                    continue
                if deadline is not None and time.monotonic() >= deadline:
                    raise JobTimeout(
                        f"the job's deadline passed with {collector.tally.chunks} of "
                        f"{job.plan.chunk_count} chunks counted"
                    )
                if chunk.index in faults.fail:
                    raise JobFailed(f"chunk {chunk.index} failed: {faults.fail[chunk.index]}")
                busy(Busy(1, 1))  # this chunk, computed now in this thread
                copies = 2 if chunk.index in faults.lose else 1
                for _ in range(copies):  # a lost copy is computed, then computed again
                    time.sleep(faults.delay.get(chunk.index, 0.0))
                    try:
                        result = over_the_wire(compute_chunk(model, job, chunk))
                    except ModelError as exc:  # as the local pool and the workers report it
                        raise JobFailed(
                            f"chunk {chunk.index} failed: {type(exc).__name__}: {exc}"
                        ) from None
                    self.computed.append((job.id, chunk.index))
                host = hosts[chunk.index % len(hosts)]
                result = replace(result, telemetry=replace(result.telemetry, host=host))
                collector.add(result)
                if chunk.index in faults.duplicate:
                    collector.add(result)
                if chunk.index in faults.contradict:
                    forged = tuple(0 if any(result.sums) else 1 for _ in result.sums)
                    collector.add(replace(result, sums=forged))
                self._stop_if_due()
        except TallyError as exc:
            raise JobFailed(f"chunk results do not add up: {exc}") from None
        return collector.tally

    def close(self) -> None:
        self._call("close")

    def _call(self, name: str) -> None:
        with self._lock:
            self.calls[name] += 1

    def _stop_if_due(self) -> None:
        with self._lock:
            self._counted += 1
            due = self.faults.stop_after is not None and self._counted >= self.faults.stop_after
        if due:
            raise HubStopped(f"the hub stopped after {self._counted} chunk(s) (injected)")


def over_the_wire(result: ChunkResult) -> ChunkResult:
    """``result`` as the hub reads it from a worker: encoded, in JSON, and decoded."""
    return decode_result(json.loads(json.dumps(encode_result(result))))
