"""Riding out a result backend that goes away mid-job, or comes back without the job's state.

The hub marks each job with a key in the backend that lives as long as the job's
results (:meth:`Recovery.mark_job`): if it is gone, so are they (Redis restarted
without its data). The chunk results the hub has read are in its own tally; everything
else of the waves in flight is published again (same task ids, plain tasks: the chords'
counters are gone, so their callbacks cannot fire and are not awaited). A chunk's
result is a pure function of the chunk, so recomputing changes nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from mcpi.cluster.app import KEY_PREFIX
from mcpi.cluster.client import (
    REDIS_ERRORS,
    SERVICE_ERRORS,
    ClusterClient,
    riding_out,
    service_gone,
)
from mcpi.cluster.publisher import Publisher, WaveRun
from mcpi.cluster.watchdog import Watchdog


class Recovery:
    """The backend's outages and lost state, for the job ``publisher`` publishes; the
    waves ``in_flight`` are what a lost state must have sent again."""

    def __init__(self, client: ClusterClient, publisher: Publisher, in_flight: list[WaveRun]):
        self.client = client
        self.publisher = publisher
        self.in_flight = in_flight
        self.notes: list[str] = []
        self._key = f"{KEY_PREFIX}job-{publisher.job.id}"

    def mark_job(self) -> None:
        """A key that lives as long as the job's results: its loss means theirs."""
        expires = self.client.settings.result_expires
        self.client.results.client.set(self._key, "1", ex=expires)

    def check_job_state(self) -> None:
        """Recover if the backend lost the job's state (restarted without its data)."""
        if self.client.results.client.exists(self._key):
            return
        resent = sum(self.publisher.resend(run) for run in self.in_flight)
        self.mark_job()
        self.notes.append(
            f"the result backend lost this job's state mid-job (restarted without its "
            f"data?); {resent} chunk(s) not yet collected were sent again, and the "
            "hub's own tally replaced the chord callbacks' cross-check"
        )

    def forget_job(self) -> None:
        """The job is done: its mark goes (best effort: it expires anyway)."""
        with contextlib.suppress(*REDIS_ERRORS):
            self.client.results.client.delete(self._key)

    @contextlib.contextmanager
    def outage(self, watchdog: Watchdog) -> Iterator[None]:
        """Ride out a result-backend or broker restart: wait (bounded) for both, then
        check the backend's state.

        The broker matters here too: a state found lost is sent again through it, and
        the two may be away together (the chaos soak's overlapping faults). Sending again
        is safe to repeat: the same task ids, and a chunk delivered twice counts once.
        Raises :class:`Unreachable` if either stays away for ``worker_grace``.
        """
        try:
            yield
        except SERVICE_ERRORS as exc:
            if not service_gone(exc):
                raise
            self.wait_for_services(watchdog, exc)

    def wait_for_services(
        self, watchdog: Watchdog, error: BaseException, check_state: bool = True
    ) -> None:
        """Wait until the broker and the backend answer again, at most ``worker_grace``;
        then (``check_state``) recover if the backend lost the job's state.

        Raises :class:`Unreachable` if either stays away that long.
        """
        grace = self.client.settings.worker_grace

        def wait(exc: BaseException) -> None:
            self.client.wait_for_services(exc, grace, watchdog.check_deadline)

        wait(error)
        if check_state:
            # The chunks a lost state must have sent again go through the broker, which
            # may go away again just then: wait again, and send them again.
            riding_out(self.check_job_state, wait)
