"""The embedded default: a job's plan counted on a local process pool.

Same kernel (or model), same plan, same tally as the cluster, so the same (seed, N)
gives the bit-identical hit count (or a model's bit-identical sums). Pool processes
find a model job's model as workers do, by name among the installed models, or, on
this pool only, from the file or module the user named. At most two chunks per
process are in flight, so memory stays bounded however many chunks the plan has. The
hub journals each result as it is counted (:mod:`mcpi.hub.run`), so a killed hub's job
resumes from the journal.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from mcpi import models
from mcpi.core.chunk import ChunkResult, compute_model_chunk, count_chunk
from mcpi.core.job import Job
from mcpi.core.kernel import count_hits
from mcpi.core.model import Model, ModelCall, ModelError, chunk_sums
from mcpi.core.plan import Chunk
from mcpi.core.tally import JobTally, WaveTally
from mcpi.core.tuning import Capacity, HostRate
from mcpi.errors import JobFailed, JobTimeout

#: What one chunk costs a pool process besides counting: pickling the chunk and its
#: result through the pool's pipes (~0.1 ms measured; a generous bound).
LOCAL_TASK_OVERHEAD = 0.0005
#: How often a job waiting on its chunks checks that the pool is still open.
CLOSED_CHECK_SECONDS = 0.5
#: How often a pool process checks that its hub is still alive.
HUB_WATCH_SECONDS = 1.0
#: Darts per calibration run of the kernel in this process (~10 ms on a current core).
CALIBRATION_DARTS = 1 << 21
#: A model's calibration run in this process lasts about this long (at least a block).
MODEL_CALIBRATION_SECONDS = 0.02


class LocalPool:
    """Runs jobs on ``processes`` local processes (default: every core).

    ``model_source`` is how the user named a model job's model (an installed name, or
    ``FILE.py:NAME`` / ``MODULE:NAME``); a session's jobs name theirs in :attr:`sources`.
    Jobs may run at once from several threads (a sweep): they share the pool's
    processes, each with its own results.
    """

    mode = "local"
    where = "local"
    #: Measuring this machine costs a few milliseconds: done afresh for every job.
    rates_worth_keeping = False

    def __init__(
        self,
        processes: int | None = None,
        model_source: str | None = None,
    ) -> None:
        self.processes = processes or os.cpu_count() or 1
        self.model_source = model_source
        #: Where each model (by name) is found, as the user named it.
        self.sources: dict[str, str] = {}
        self.notes: list[str] = []
        self._pool: Any = None
        self._lock = threading.Lock()
        self._running = 0

    @property
    def description(self) -> str:
        return f"local pool of {self.processes} process{'es' if self.processes > 1 else ''}"

    def prepare(self, model: ModelCall | None = None) -> dict[str, int]:
        """This machine's slots: the chunks that can run at once (its models are here)."""
        return {socket.gethostname(): self.processes}

    def source_of(self, call: ModelCall) -> str:
        """How the pool's processes find the model of ``call``."""
        return self.sources.get(call.name) or self.model_source or call.name

    def close(self) -> None:
        """Stop the pool's processes (the CLI's one job, or a session, is over)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()
            pool.join()

    def calibrate(self, model: ModelCall | None = None) -> Capacity:
        """This machine's slots, at the kernel's (or model's) rate measured here and now."""
        rate = self._kernel_rate() if model is None else self._model_rate(model)
        host = HostRate(socket.gethostname(), self.processes, rate)
        return Capacity.of([host], LOCAL_TASK_OVERHEAD)

    @staticmethod
    def _kernel_rate() -> float:
        """Darts/s of the kernel in this process (best of 3)."""
        count_hits(0, 0, CALIBRATION_DARTS // 8)  # warm up
        best = 0.0
        for _ in range(3):
            began = time.perf_counter()
            count_hits(0, 0, CALIBRATION_DARTS)
            best = max(best, CALIBRATION_DARTS / (time.perf_counter() - began))
        return best

    def _model_rate(self, call: ModelCall) -> float:
        """Samples/s of the model in this process: one block, then about 20 ms of blocks."""
        try:
            model = _find_model(self.source_of(call), call)
            began = time.perf_counter()
            chunk_sums(model, call, 0, 0, call.block)
            seconds = max(time.perf_counter() - began, 1e-9)
            blocks = int(MODEL_CALIBRATION_SECONDS / seconds)
            if blocks < 2:
                return call.block / seconds
            began = time.perf_counter()
            chunk_sums(model, call, 0, call.block, (1 + blocks) * call.block)
        except ModelError as exc:  # the model fails on this machine: the job cannot run
            raise JobFailed(str(exc)) from None
        return blocks * call.block / max(time.perf_counter() - began, 1e-9)

    def run(
        self,
        job: Job,
        counted: Callable[[ChunkResult], None],
        deadline: float | None,
        earlier: Sequence[ChunkResult] | None,
    ) -> JobTally:
        """Count ``job``; a resumed one first takes the chunks counted ``earlier``."""
        plan = job.plan
        tally = JobTally(plan, job.width)
        open_waves: dict[range, WaveTally] = {}

        def add(result: ChunkResult, earlier: bool = False) -> None:
            indices = plan.wave_of(result.chunk.index)
            wave = open_waves.get(indices)
            if wave is None:
                wave = open_waves[indices] = tally.wave(indices)
            if wave.add(result, earlier):
                counted(result)
            if wave.complete:
                tally.fold(open_waves.pop(indices))

        done: set[int] = set()
        if earlier:
            for before in earlier:
                add(before, earlier=True)
                done.add(before.chunk.index)
            if done:
                tally.notes.append(
                    f"resumed: {len(done):,} chunk(s) counted before were taken from the "
                    "journal, not recomputed"
                )
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
                if job.model is None:
                    work: Callable[..., ChunkResult] = count_chunk
                    arguments: tuple[Any, ...] = (job.seed, chunk)
                else:
                    work = _compute_model_chunk
                    arguments = (self.source_of(job.model), job.model, job.seed, chunk)
                pool.apply_async(
                    work,
                    arguments,
                    callback=functools.partial(_counted, results),
                    error_callback=functools.partial(_failed, results, chunk),
                )
                return True

            while in_flight < 2 * self.processes and submit():
                in_flight += 1
            while in_flight:
                ok, item = self._next_result(pool, results, deadline, tally, plan.chunk_count)
                in_flight -= 1
                if not ok:
                    chunk, error = item
                    raise JobFailed(f"chunk {chunk.index} failed: {type(error).__name__}: {error}")
                result: ChunkResult = item
                add(result)
                if submit():
                    in_flight += 1
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
                    self.processes, initializer=_child_init, initargs=(os.getpid(),)
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


def _find_model(source: str, call: ModelCall) -> Model:
    """The model ``source`` names, checked to be the code ``call`` was made from."""
    model = models.find(source)
    call.check(model)
    return model


def _compute_model_chunk(source: str, call: ModelCall, seed: int, chunk: Chunk) -> ChunkResult:
    """A pool process's body for a model chunk (the model is loaded once per process)."""
    return compute_model_chunk(_find_model(source, call), call, seed, chunk)


def _counted(results: queue.SimpleQueue[tuple[bool, Any]], result: ChunkResult) -> None:
    results.put((True, result))


def _failed(
    results: queue.SimpleQueue[tuple[bool, Any]], chunk: Chunk, error: BaseException
) -> None:
    results.put((False, (chunk, error)))


def _context() -> multiprocessing.context.BaseContext:
    # Not "fork": children would inherit the hub's open broker sockets, and Celery's
    # after-fork cleanup in a child closes the parent's pooled connection. Children of
    # a fork server start clean, with the kernel's imports preloaded once.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["mcpi.core.chunk"])
    return context


def _child_init(hub: int) -> None:
    # Ctrl-C is the hub's to handle: pool processes ignore it and are terminated.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A hub killed outright must take its pool along, not leave processes that count
    # for nobody. Their parent is the fork server, which outlives the hub while they
    # run, so each watches the hub itself.
    threading.Thread(target=_exit_with, args=(hub,), daemon=True).start()


def _exit_with(hub: int) -> None:
    while True:
        time.sleep(HUB_WATCH_SECONDS)
        try:
            os.kill(hub, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # the pid was reused by someone else's process
            os._exit(1)
