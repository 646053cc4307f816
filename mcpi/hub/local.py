"""The embedded default: a job's plan computed on a local process pool.

Same model, same plan, same chunk function, same tally as the cluster, so the same job
gives the bit-identical sums (π's the same hit count). Pool processes find the job's
model as workers do, by name among the installed models, or, on this pool only, from
the file or module the user named. At most two chunks per process are in flight, so
memory stays bounded however many chunks the plan has. The hub journals each result as
it is counted (:mod:`mcpi.hub.run`), so a killed hub's job resumes from the journal.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import queue
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from mcpi.core.chunk import ChunkResult
from mcpi.core.job import Job
from mcpi.core.model import ModelCall, ModelError, chunk_sums
from mcpi.core.plan import Chunk
from mcpi.core.tally import Busy, Collector, JobTally, ignore_busy
from mcpi.core.tuning import Capacity, HostRate, next_calibration
from mcpi.errors import JobFailed, JobTimeout
from mcpi.hub import poolchild

#: What one chunk costs a pool process besides counting: pickling the chunk and its
#: result through the pool's pipes (~0.1 ms measured; a generous bound).
LOCAL_TASK_OVERHEAD = 0.0005
#: How often a job waiting on its chunks checks that the pool is still open.
CLOSED_CHECK_SECONDS = 0.5
#: A model's calibration run in this process lasts about this long (at least a block).
CALIBRATION_SECONDS = 0.02


class LocalPool:
    """Runs jobs on ``processes`` local processes (default: every core).

    Jobs may run at once from several threads (a sweep): they share the pool's
    processes, each with its own results.
    """

    mode = "local"
    where = "local"
    #: Measuring this machine costs tens of milliseconds, a tenth of a small job's whole
    #: command: kept in the rate book like a cluster's, and relearnt from every job.
    rates_worth_keeping = True

    def __init__(self, processes: int | None = None) -> None:
        self.processes = processes or os.cpu_count() or 1
        #: Where each model (by name) is found, as the user named it: an installed
        #: name, or a file or module (see :meth:`prepare`).
        self.sources: dict[str, str] = {}
        self.notes: list[str] = []
        self._pool: Any = None
        self._lock = threading.Lock()
        self._running = 0

    @property
    def description(self) -> str:
        return f"local pool of {self.processes} process{'es' if self.processes > 1 else ''}"

    def prepare(self, model: ModelCall, source: str | None = None) -> dict[str, int]:
        """This machine's slots: the chunks that can run at once (its models are here).

        Its processes find ``model`` where ``source`` says (default: by its name).
        """
        if source is not None:
            self.sources[model.name] = source
        return {socket.gethostname(): self.processes}

    def source_of(self, call: ModelCall) -> str:
        """How the pool's processes find the model of ``call``."""
        return self.sources.get(call.name, call.name)

    def close(self) -> None:
        """Stop the pool's processes (the CLI's one job, or a session, is over)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()
            pool.join()

    def calibrate(self, model: ModelCall, task_overhead: float | None = None) -> Capacity:
        """This machine's slots, at the model's rate measured here and now (the pool's
        overhead per task is its own constant)."""
        host = HostRate(socket.gethostname(), self.processes, self._rate(model))
        return Capacity.of([host], LOCAL_TASK_OVERHEAD)

    def _rate(self, call: ModelCall) -> float:
        """Samples/s of the model in this process, from a run of about 20 ms.

        Runs grow from one block until one lasts a quarter of that: a cheap model's first
        block (a dart: nanoseconds) says more about the call than about the model (see
        :func:`~mcpi.core.tuning.next_calibration`).
        """
        try:
            model = poolchild.find_model(self.source_of(call), call)
            blocks, start, first = 1, 0, True
            while True:
                stop = start + blocks * call.block
                began = time.perf_counter()
                chunk_sums(model, call, 0, start, stop)
                seconds = max(time.perf_counter() - began, 1e-9)
                grown = next_calibration(blocks, seconds, CALIBRATION_SECONDS, first)
                if grown is None:
                    return (stop - start) / seconds
                blocks, start, first = grown, stop, False
        except ModelError as exc:  # the model fails on this machine: the job cannot run
            raise JobFailed(str(exc)) from None

    def run(
        self,
        job: Job,
        counted: Callable[[ChunkResult], None],
        deadline: float | None,
        earlier: Sequence[ChunkResult] | None,
        busy: Callable[[Busy], None] = ignore_busy,
    ) -> JobTally:
        """Count ``job``; a resumed one first takes the chunks counted ``earlier``.

        Of the chunks in flight, as many as the pool has processes are running (those
        of other jobs of a sweep aside); the rest wait in the pool's queue.
        """
        plan = job.plan
        collector = Collector(plan, job.width, counted, job.shape)
        tally = collector.tally
        done = collector.resume(earlier or ())
        results: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()
        chunks = (c for c in plan.chunks() if c.index not in done)
        in_flight = 0
        pool = self._start()
        finished = False
        with self._lock:
            self._running += 1
        try:

            def submit() -> bool:
                chunk = next(chunks, None)
                if chunk is None:
                    return False
                pool.apply_async(
                    poolchild.compute_chunk_of,
                    (self.source_of(job.model), job, chunk),
                    callback=functools.partial(_counted, results),
                    error_callback=functools.partial(_failed, results, chunk),
                )
                return True

            while in_flight < 2 * self.processes and submit():
                in_flight += 1
            busy(Busy(in_flight, min(in_flight, self.processes)))
            while in_flight:
                ok, item = self._next_result(pool, results, deadline, tally, plan.chunk_count)
                in_flight -= 1
                if not ok:
                    chunk, error = item
                    raise JobFailed(f"chunk {chunk.index} failed: {type(error).__name__}: {error}")
                collector.add(item)
                if submit():
                    in_flight += 1
                busy(Busy(in_flight, min(in_flight, self.processes)))
            finished = True
        finally:
            with self._lock:
                self._running -= 1
                alone = self._running == 0
            if not finished and alone:
                # Chunks still in flight count for nobody: the pool goes with them.
                # (While other jobs of a sweep run, they finish and are dropped.)
                self.close()
        return tally

    def _start(self) -> Any:
        """The pool: started on the first job, kept for the next ones until :meth:`close`."""
        with self._lock:
            if self._pool is None:
                self._pool = _context().Pool(
                    self.processes, initializer=poolchild.start, initargs=(os.getpid(),)
                )
            return self._pool

    def _next_result(
        self,
        pool: Any,
        results: queue.SimpleQueue[tuple[bool, Any]],
        deadline: float | None,
        tally: JobTally,
        chunks: int,
    ) -> tuple[bool, Any]:
        """The next chunk's outcome, or an error if the deadline passes or the pool is
        closed (by another thread: a session closed while its jobs run)."""
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            try:
                return results.get(
                    timeout=CLOSED_CHECK_SECONDS
                    if left is None
                    else max(0.0, min(left, CLOSED_CHECK_SECONDS))
                )
            except queue.Empty:
                if left is not None and left <= CLOSED_CHECK_SECONDS:
                    raise JobTimeout(
                        f"the job's deadline passed with {tally.chunks} of {chunks} chunks counted"
                    ) from None
                if self._pool is not pool:
                    raise JobFailed("the local pool was closed while the job ran") from None


def _counted(results: queue.SimpleQueue[tuple[bool, Any]], result: ChunkResult) -> None:
    results.put((True, result))


def _failed(
    results: queue.SimpleQueue[tuple[bool, Any]], chunk: Chunk, error: BaseException
) -> None:
    results.put((False, (chunk, error)))


def _context() -> multiprocessing.context.BaseContext:
    """How to start the pool's processes: a plain fork where that is safe, else a fork server.

    A fork copies the hub as it is, so it is safe only in a hub with one thread (a lock
    held by another thread would stay held in the child) and no Celery loaded (Celery's
    after-fork cleanup in a child closes the parent's pooled broker connection): the
    CLI's local job, the common case, where it saves the fork server's start (a fresh
    interpreter importing numpy, about a tenth of a second of a small job's command).
    Children of a fork server start clean, with what they need loaded once in it.
    """
    if threading.active_count() == 1 and not any(
        name in sys.modules for name in ("celery", "kombu")
    ):
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([poolchild.__name__])
    return context
