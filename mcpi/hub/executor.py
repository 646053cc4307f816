"""The executor seam: the one interface between the hub and where a job's chunks run.

Three executors implement it: :class:`mcpi.hub.local.LocalPool` (processes on this
machine, the embedded default), :class:`mcpi.cluster.executor.Cluster` (the Celery
workers), and, for the hub's own tests, :class:`mcpi.testing.inprocess.InProcess`
(the calling thread, with faults on demand). Each computes the same plan with the same
chunk function and tally, so the same job gives the bit-identical result on any of
them. An executor only runs and measures; the hub owns what persists (job records,
journals, the rate book), and never asks which executor it holds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from mcpi.core.chunk import ChunkResult
from mcpi.core.job import Job
from mcpi.core.model import ModelCall
from mcpi.core.tally import Busy, JobTally, ignore_busy
from mcpi.core.tuning import Capacity
from mcpi.settings import Settings

if TYPE_CHECKING:
    from mcpi.hub.request import JobRequest


class Executor(Protocol):
    """Where a job's chunks are computed. The hub relies on this, and on nothing else:

    * **Order.** For one job: :meth:`prepare` once, then :meth:`calibrate` if the hub
      has no fresh rates for the job's model, then :meth:`run` once per stage of the
      job, and :meth:`close` at the end, whatever happened.
    * **Threads.** :meth:`run` may be called from several threads at once, for several
      jobs (a sweep's): each call has its own tally and callbacks. A session's
      executor (:class:`mcpi.hub.warm.Warm`) gives each job a view of its own, so
      that :meth:`prepare`'s notes and :meth:`close` stay per job.
    * **Busy.** While a stage runs, :meth:`run` tells ``busy`` now and then (from the
      calling thread) how many of its chunks are out and running, for a live view.
    * **Notes.** Remarks for a job's report travel two ways: :meth:`prepare` appends
      those it finds (say, hosts whose numeric runtimes differ) to :attr:`notes`; those
      of a run (a resume, a recovery, backups) come back in the tally's ``notes``.
    * **Errors.** Every failure is an :class:`~mcpi.errors.McpiError` subclass with a
      one-line message (unreachable services, no workers, a model missing, a chunk
      that failed, the deadline).
    """

    #: ``"local"`` or ``"cluster"``: recorded with the job, and shown in reports.
    mode: str
    #: Whether measured rates are worth keeping between runs (in the hub's rate book),
    #: or cheap enough to measure afresh for each job.
    rates_worth_keeping: bool
    #: Remarks for the job's report found by :meth:`prepare`.
    notes: list[str]

    @property
    def where(self) -> str:
        """What a job record names as where it ran: ``"local"`` or the broker's address."""
        ...

    @property
    def description(self) -> str:
        """One line for reports: the pool's size, or the cluster's workers and slots."""
        ...

    def prepare(self, model: ModelCall, source: str | None = None) -> dict[str, int]:
        """Check that jobs of ``model`` can run here; the slots (chunks computed at once)
        per host.

        Services reachable, workers answering, each of them with that model's code.
        ``source`` is how the user named the model: an installed name, or a
        ``FILE.py:NAME`` / ``MODULE:NAME`` that only the local pool loads (the hub
        refuses it elsewhere). Raises :class:`~mcpi.errors.McpiError` subclasses with
        one-line reasons.
        """
        ...

    def calibrate(self, model: ModelCall, task_overhead: float | None = None) -> Capacity:
        """Measure, now, each host's per-slot rate of ``model`` (samples per second) and
        the per-task overhead, unless ``task_overhead`` is known already."""
        ...

    def run(
        self,
        job: Job,
        counted: Callable[[ChunkResult], None],
        deadline: float | None,
        earlier: Sequence[ChunkResult] | None,
        busy: Callable[[Busy], None] = ignore_busy,
    ) -> JobTally:
        """Compute every chunk of ``job``, each counted exactly once; return the tally.

        ``counted`` is told of each chunk as it is counted (progress, trace, the hub's
        journal), from the calling thread; ``deadline`` (a ``time.monotonic()`` value)
        bounds the wait. ``earlier`` is None for a fresh run; for a resumed one, the
        results the hub's journal holds (possibly none). They are taken, not
        recomputed, and so are any others the executor still keeps (the cluster's
        result backend). ``busy`` is told now and then what is out (:class:`Busy`).
        """
        ...

    def close(self) -> None:
        """Release what :meth:`prepare` and :meth:`run` opened."""
        ...


def choose_executor(request: JobRequest, settings: Settings) -> tuple[Executor, list[str]]:
    """The cluster if one is configured (and not overridden), else the local pool.

    Also the notes that say why a job ran locally.
    """
    from mcpi.hub.local import LocalPool

    pool = LocalPool(request.processes)
    if request.local:
        return pool, ["ran locally (--local)"]
    if not settings.cluster_configured:
        return pool, [
            "ran locally: no cluster configured (see `mcpi-hub estimate --help` to use one)"
        ]
    from mcpi.cluster.executor import Cluster

    return Cluster(settings), []
