"""The executor seam: the one interface between the hub and where a job's chunks run.

Two executors implement it: :class:`mcpi.hub.local.LocalPool` (processes on this
machine, the embedded default) and :class:`mcpi.cluster.executor.Cluster` (the Celery
workers). Both count the same plan with the same kernel and tally, so the same job
gives the bit-identical count on either. An executor only runs and measures; the hub
owns what persists (job records, journals, the rate book).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from mcpi.core.chunk import ChunkResult
from mcpi.core.job import Job
from mcpi.core.model import ModelCall
from mcpi.core.tally import JobTally
from mcpi.core.tuning import Capacity
from mcpi.settings import Settings

if TYPE_CHECKING:
    from mcpi.hub.request import EstimateRequest


class Executor(Protocol):
    """Where a job's chunks are counted. The hub calls, in this order:

    :meth:`prepare` once, then :meth:`calibrate` when it has no fresh rates, then
    :meth:`run` once per stage of the job, and :meth:`close` at the end, whatever
    happened.
    """

    #: ``"local"`` or ``"cluster"``: recorded with the job, and shown in reports.
    mode: str
    #: Whether measured rates are worth keeping between runs (in the hub's rate book),
    #: or cheap enough to measure afresh for each job.
    rates_worth_keeping: bool
    #: Remarks for the job's report found by :meth:`prepare` (those of a run, a resume
    #: or a recovery, come with its tally).
    notes: list[str]

    @property
    def where(self) -> str:
        """What a job record names as where it ran: ``"local"`` or the broker's address."""
        ...

    @property
    def description(self) -> str:
        """One line for reports: the pool's size, or the cluster's workers and slots."""
        ...

    def prepare(self, model: ModelCall | None = None) -> dict[str, int]:
        """Check that jobs can run (services reachable, workers answering); slots per host.

        With ``model``, also that every worker has that model's code. Raises
        :class:`~mcpi.errors.McpiError` subclasses with one-line reasons.
        """
        ...

    def calibrate(self, model: ModelCall | None = None) -> Capacity:
        """Measure, now, each host's per-slot rate and the per-task overhead.

        Rates are darts per second, or with ``model`` that model's samples per second.
        """
        ...

    def run(
        self,
        job: Job,
        counted: Callable[[ChunkResult], None],
        deadline: float | None,
        earlier: Sequence[ChunkResult] | None,
    ) -> JobTally:
        """Count every chunk of ``job``, each exactly once, and return the tally.

        ``counted`` is told of each chunk as it is counted (progress, trace, the hub's
        journal), from the calling thread; ``deadline`` (a ``time.monotonic()`` value)
        bounds the wait.
        ``earlier`` is None for a fresh run; for a resumed one, the results the hub's
        journal holds (possibly none). They are taken, not recomputed, and so are
        any others the executor still keeps (the cluster's result backend).
        """
        ...

    def close(self) -> None:
        """Release what :meth:`prepare` and :meth:`run` opened."""
        ...


def choose_executor(request: EstimateRequest, settings: Settings) -> tuple[Executor, list[str]]:
    """The cluster if one is configured (and not overridden), else the local pool.

    Also the notes that say why a job ran locally.
    """
    from mcpi.hub.local import LocalPool

    pool = LocalPool(request.processes, request.model)
    if request.local:
        return pool, ["ran locally (--local)"]
    if not settings.cluster_configured:
        return pool, [
            "ran locally: no cluster configured (see `mcpi-hub estimate --help` to use one)"
        ]
    from mcpi.cluster.executor import Cluster

    return Cluster(settings), []
