"""The cluster executor: a job run on the Celery workers behind the configured broker.

A thin composition of the cluster's parts, behind the hub's executor seam
(:class:`mcpi.hub.executor.Executor`): the :class:`~mcpi.cluster.client.ClusterClient`
for checks and broadcasts, :func:`~mcpi.cluster.calibration.calibrate` for
measurements, and one :class:`~mcpi.cluster.waves.ClusterJob` per job run. It keeps no
rates itself: the hub's rate book does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mcpi.cluster.arrivals import Listeners
from mcpi.cluster.calibration import calibrate
from mcpi.cluster.client import ClusterClient, slots_by_host
from mcpi.cluster.waves import ClusterJob
from mcpi.core.chunk import ChunkResult
from mcpi.core.job import Job
from mcpi.core.model import ModelCall
from mcpi.core.runtime import differences, numeric_runtime
from mcpi.core.tally import Busy, JobTally, ignore_busy
from mcpi.core.tuning import Capacity
from mcpi.settings import Settings


class Cluster:
    """The workers behind the configured broker and result backend."""

    mode = "cluster"
    #: A calibration costs the cluster a second or so: worth remembering between runs.
    rates_worth_keeping = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = ClusterClient(settings)
        #: The jobs' subscriptions to the backend's announcements, kept between jobs.
        self.listeners = Listeners(self.client.results)
        self.slots: dict[str, int] = {}
        self.workers = 0
        self.notes: list[str] = []

    @property
    def where(self) -> str:
        return self.client.where

    @property
    def description(self) -> str:
        return (
            f"cluster at {self.client.broker}: "
            f"{self.workers} worker(s), {sum(self.slots.values())} slot(s)"
        )

    def prepare(self, model: ModelCall, source: str | None = None) -> dict[str, int]:
        """Check the broker, the backend and the workers (and their model); slots per host.

        Workers find models by their installed names only (``source`` is the hub's).
        """
        stats, info = self.client.preflight(model, wait=self.settings.service_wait)
        runtimes = {node: info.get(node, {}) for node in stats}
        mixed = differences(numeric_runtime(), runtimes)
        if mixed:
            self.notes.append(
                "the model's samples may differ in the last bits between hosts, and so "
                "from --local: " + "; ".join(mixed)
            )
        self.workers = len(stats)
        self.slots = slots_by_host(stats)
        return self.slots

    def calibrate(self, model: ModelCall, task_overhead: float | None = None) -> Capacity:
        return calibrate(self.client, self.slots, model, task_overhead)

    def run(
        self,
        job: Job,
        counted: Callable[[ChunkResult], None],
        deadline: float | None,
        earlier: Sequence[ChunkResult] | None,
        busy: Callable[[Busy], None] = ignore_busy,
    ) -> JobTally:
        slots = sum(self.slots.values())
        backup_slots = slots if self.settings.backups else 0
        run = ClusterJob(
            self.client, job, slots, self.settings.wave_chunks, counted, earlier, backup_slots,
            self.listeners, busy,
        )  # fmt: skip
        tally = run.run(deadline)
        tally.notes += run.notes
        return tally

    def close(self) -> None:
        self.listeners.close()
        self.client.close()
