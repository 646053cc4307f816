"""A warm executor: one kept between the jobs of a session, checked and measured once.

The CLI runs one job per process: it checks the cluster (or starts the local pool) and
measures it for that job. A script or notebook that runs many jobs
(:class:`mcpi.api.Session`) keeps one :class:`Warm` executor instead: the local pool's
processes stay up, the cluster's preflight answer is reused for
:data:`PREPARE_SECONDS`, and each model's measured rates for the session's life. What
a job counts does not depend on any of it: only how fast it gets there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from mcpi.core.chunk import ChunkResult
from mcpi.core.job import Job
from mcpi.core.model import ModelCall
from mcpi.core.tally import JobTally
from mcpi.core.tuning import Capacity
from mcpi.hub.executor import Executor
from mcpi.hub.local import LocalPool

#: A preflight answer (workers, slots, their models) is reused this long: workers come
#: and go, and a job on a cluster that has gone is best refused at once (exit 7).
PREPARE_SECONDS = 60.0


def model_key(model: ModelCall | None) -> str:
    """What makes a model's checks and rates its own: name, code, version and parameters."""
    if model is None:
        return "pi"
    return f"{model.name} {model.version} {model.digest} {model.params!r}"


class Warm:
    """``inner``, with its preparation and calibration kept between jobs.

    ``why`` are the notes that say where the session's jobs run (and why there).
    """

    def __init__(self, inner: Executor, why: Sequence[str] = ()) -> None:
        self.inner = inner
        self.why = list(why)
        self.mode = inner.mode
        self.rates_worth_keeping = inner.rates_worth_keeping
        #: The inner executor's own list, which its runs extend.
        self.notes = inner.notes
        self._prepared: dict[str, tuple[float, dict[str, int], list[str]]] = {}
        self._capacity: dict[str, Capacity] = {}

    @property
    def where(self) -> str:
        return self.inner.where

    @property
    def description(self) -> str:
        return self.inner.description

    def prepare(self, model: ModelCall | None = None) -> dict[str, int]:
        """The inner executor's answer, asked again once it is :data:`PREPARE_SECONDS` old."""
        key = model_key(model)
        known = self._prepared.get(key)
        if known is not None and time.monotonic() - known[0] < PREPARE_SECONDS:
            _, slots, notes = known
            self.inner.notes.extend(notes)
            return dict(slots)
        before = len(self.inner.notes)
        slots = self.inner.prepare(model)
        self._prepared[key] = (time.monotonic(), dict(slots), self.inner.notes[before:])
        return slots

    def calibrate(self, model: ModelCall | None = None) -> Capacity:
        key = model_key(model)
        if key not in self._capacity:
            self._capacity[key] = self.inner.calibrate(model)
        return self._capacity[key]

    def run(
        self,
        job: Job,
        counted: Callable[[ChunkResult], None],
        deadline: float | None,
        earlier: Sequence[ChunkResult] | None,
    ) -> JobTally:
        return self.inner.run(job, counted, deadline, earlier)

    def new_job(self, model_source: str | None) -> list[str]:
        """Ready for the next job (of the model named ``model_source``): the last job's
        notes forgotten, each report has its own; the notes a new job starts with."""
        self.inner.notes.clear()
        if isinstance(self.inner, LocalPool):
            self.inner.model_source = model_source
        return list(self.why)

    def close(self) -> None:
        self.inner.close()
