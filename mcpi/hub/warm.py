"""A warm executor: one kept between the jobs of a session, checked and measured once.

The CLI runs one job per process: it checks the cluster (or starts the local pool) and
measures it for that job. A script or notebook that runs many jobs
(:class:`mcpi.api.Session`), or a sweep of jobs at once (:mod:`mcpi.hub.sweep`), keeps
one :class:`Warm` executor instead: the local pool's processes stay up, the cluster's
preflight answer is reused for :data:`PREPARE_SECONDS`, and each model's measured
rates for the session's life. What a job counts does not depend on any of it: only
how fast it gets there.

Each job runs through its own :class:`WarmJob`, a view with its own notes, so jobs may
run at once from several threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from mcpi.core.chunk import ChunkResult
from mcpi.core.job import Job
from mcpi.core.model import ModelCall
from mcpi.core.tally import Busy, JobTally, ignore_busy
from mcpi.core.tuning import Capacity
from mcpi.hub.executor import Executor

#: A preflight answer (workers, slots, their models) is reused this long: workers come
#: and go, and a job on a cluster that has gone is best refused at once (exit 7).
PREPARE_SECONDS = 60.0


def code_key(model: ModelCall) -> str:
    """What a preflight checks of a model: its code (name, version, digest)."""
    return f"{model.name} {model.version} {model.digest}"


def model_key(model: ModelCall) -> str:
    """What makes a model's rates its own: its code and its parameters."""
    return f"{code_key(model)} {model.params!r}"


class Warm:
    """``inner``, with its preparation and calibration kept between jobs.

    ``why`` are the notes that say where the session's jobs run (and why there).
    """

    def __init__(self, inner: Executor, why: Sequence[str] = ()) -> None:
        self.inner = inner
        self.why = list(why)
        self.mode = inner.mode
        self._lock = threading.Lock()
        self._prepared: dict[str, tuple[float, dict[str, int], list[str]]] = {}
        self._capacity: dict[str, Capacity] = {}

    @property
    def where(self) -> str:
        return self.inner.where

    def job(self) -> WarmJob:
        """The executor for one job."""
        return WarmJob(self)

    def prepare(
        self, model: ModelCall, source: str | None = None
    ) -> tuple[dict[str, int], list[str]]:
        """The inner executor's answer and its notes, asked again once it is
        :data:`PREPARE_SECONDS` old. Jobs of one model's code share it, whatever their
        parameters.
        """
        key = f"{code_key(model)} {source}"
        with self._lock:
            known = self._prepared.get(key)
            if known is not None and time.monotonic() - known[0] < PREPARE_SECONDS:
                return dict(known[1]), list(known[2])
            before = len(self.inner.notes)
            slots = self.inner.prepare(model, source)
            notes = self.inner.notes[before:]
            del self.inner.notes[before:]
            self._prepared[key] = (time.monotonic(), dict(slots), notes)
            return dict(slots), list(notes)

    def calibrate(self, model: ModelCall, task_overhead: float | None = None) -> Capacity:
        key = model_key(model)
        with self._lock:
            if key not in self._capacity:
                self._capacity[key] = self.inner.calibrate(model, task_overhead)
            return self._capacity[key]

    def close(self) -> None:
        self.inner.close()


class WarmJob:
    """One job's view of a :class:`Warm` executor: the executor seam, with its own notes.

    Closing it leaves the session's executor open.
    """

    def __init__(self, warm: Warm) -> None:
        self.warm = warm
        self.mode = warm.inner.mode
        self.rates_worth_keeping = warm.inner.rates_worth_keeping
        self.notes: list[str] = []

    @property
    def where(self) -> str:
        return self.warm.inner.where

    @property
    def description(self) -> str:
        return self.warm.inner.description

    def prepare(self, model: ModelCall, source: str | None = None) -> dict[str, int]:
        slots, notes = self.warm.prepare(model, source)
        self.notes += notes
        return slots

    def calibrate(self, model: ModelCall, task_overhead: float | None = None) -> Capacity:
        return self.warm.calibrate(model, task_overhead)

    def run(
        self,
        job: Job,
        counted: Callable[[ChunkResult], None],
        deadline: float | None,
        earlier: Sequence[ChunkResult] | None,
        busy: Callable[[Busy], None] = ignore_busy,
    ) -> JobTally:
        return self.warm.inner.run(job, counted, deadline, earlier, busy)

    def close(self) -> None:
        """Nothing: the session closes its executor."""
