"""One job on the cluster: its waves as chords, collected as they come, recovered if lost.

A :class:`ClusterJob` lives for one run of one job and composes the parts, each a
module of its own concern:

* :mod:`~mcpi.cluster.publisher` puts each wave on the broker (a chord, a lone task, or
  a resumed wave's rest);
* :mod:`~mcpi.cluster.poller` reads results from the backend, woken by its
  announcements: one loop for every wait;
* :mod:`~mcpi.cluster.backups` keeps the books of backup copies of overdue chunks;
* :mod:`~mcpi.cluster.recovery` rides out a backend outage, or its loss of the job's state;
* :mod:`~mcpi.cluster.chords` judges each wave's chord callback against the hub's tally;
* :mod:`~mcpi.cluster.watchdog` bounds every wait (the deadline, workers gone).

The next wave is queued while the current one is collected, so no slot idles at a
wave's end (the queue is FIFO, so it only starts once the current wave is handed out),
while at most two waves' bookkeeping exists at a time.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from collections.abc import Callable, Iterator, Sequence

from mcpi.cluster import chords
from mcpi.cluster.arrivals import Arrivals, Listeners
from mcpi.cluster.backups import Backups, ClusterCopies
from mcpi.cluster.client import REDIS_ERRORS, ClusterClient, riding_out
from mcpi.cluster.poller import Poller, Ready
from mcpi.cluster.publisher import Publisher, WaveRun
from mcpi.cluster.recovery import Recovery
from mcpi.cluster.watchdog import Watchdog
from mcpi.core.chunk import ChunkResult
from mcpi.core.job import Job
from mcpi.core.messages import MalformedMessage, encode_job, result_bytes_guess
from mcpi.core.tally import Busy, JobTally, TallyError, WaveTally, ignore_busy
from mcpi.core.tuning import wave_size, waves_in_flight
from mcpi.errors import JobFailed


class ClusterJob:
    """One run of ``job`` on the cluster behind ``client``'s ``slots`` slots, in waves of at
    most ``wave_limit`` chunks.

    A wave's size is chosen as it is published (:func:`~mcpi.core.tuning.wave_size`):
    so many chunks per slot, and no more results than one message should carry, their
    size guessed from the job's sums until results are seen; waves cut short by their
    results' size are kept in flight in greater numbers, so that every slot has work
    queued (:func:`~mcpi.core.tuning.waves_in_flight`).

    ``counted`` is told of every chunk as the hub counts it. ``earlier`` is None for a
    fresh run; a resumed run takes those results (the hub's journal), then the ones
    the backend still holds from an earlier run of the same job; up to
    ``backup_slots`` backup copies of overdue chunks may be out at once (0: none). Its
    subscription to the backend's announcements comes from ``listeners`` (kept between
    jobs). ``busy`` is told, between polls, the chunks out and those seen running.
    """

    def __init__(
        self,
        client: ClusterClient,
        job: Job,
        slots: int,
        wave_limit: int,
        counted: Callable[[ChunkResult], None],
        earlier: Sequence[ChunkResult] | None,
        backup_slots: int,
        listeners: Listeners,
        busy: Callable[[Busy], None] = ignore_busy,
    ) -> None:
        self.client = client
        self.job = job
        self.slots = slots
        self.wave_limit = wave_limit
        self.result_guess = result_bytes_guess(job.width)
        self.job_bytes = len(json.dumps(encode_job(job)))
        #: The largest wave callback's body, at most: its results at the largest seen.
        self.largest_message = 0
        self.counted = counted
        self.busy = busy
        self.in_flight: list[WaveRun] = []
        self.arrivals = Arrivals(listeners)
        self.backups = Backups(ClusterCopies(client, job), job, backup_slots)
        self.poller = Poller(client.results, self.arrivals, self.backups.started)
        self.publisher = Publisher(client, job, self.arrivals, earlier)
        self.recovery = Recovery(client, self.publisher, self.in_flight)
        self.notes: list[str] = []

    def run(self, deadline: float | None) -> JobTally:
        """Run the job wave by wave, the next wave queued while the current one is counted."""
        job, in_flight = self.job, self.in_flight
        tally = JobTally(job.plan, job.width, job.shape)
        watchdog = Watchdog(
            deadline,
            counted=lambda: f"{tally.chunks} of {job.plan.chunk_count}",
            live_workers=self.client.live_workers,
            grace=self.client.settings.worker_grace,
            check_state=self.recovery.check_job_state,
        )
        try:
            with self._job_errors():
                self._mark(watchdog)
                for wave in self._waves():
                    in_flight.append(self._publish(wave, watchdog))
                    while len(in_flight) >= waves_in_flight(self.slots, len(wave)):
                        self._collect_first(tally, watchdog)
                while in_flight:
                    self._collect_first(tally, watchdog)
                # One last look at copies still out: a late one that disagrees is caught.
                late = riding_out(
                    lambda: self.poller.poll(self.backups.late_copies()),
                    lambda exc: self.recovery.wait_for_services(watchdog, exc, check_state=False),
                )
                for task_id, index, meta in late:
                    self.backups.result(task_id, index, meta, None)
                self.recovery.forget_job()
        finally:
            # A failing job withdraws the work nobody will collect.
            for run in in_flight:
                self.client.revoke(run.outstanding())
            backups = self.backups.close()
            self.arrivals.close()
            self.notes += [n for n in (self.publisher.note(), backups) if n]
            self.notes += self.recovery.notes
        tally.largest_message = self.largest_message
        return tally

    def _waves(self) -> Iterator[range]:
        """The job's chunks in waves, each sized as it is about to be published."""
        count = self.job.plan.chunk_count
        start = 0
        while start < count:
            # A margin over the largest result seen: the next ones may be a little longer.
            seen = self.poller.largest * 5 // 4
            size = wave_size(self.slots, self.wave_limit, seen or self.result_guess)
            yield range(start, min(count, start + size))
            start += size

    def _mark(self, watchdog: Watchdog) -> None:
        """Mark the job in the backend, once it answers (it may be restarting)."""
        riding_out(
            self.recovery.mark_job,
            lambda exc: self.recovery.wait_for_services(watchdog, exc, check_state=False),
            REDIS_ERRORS,
        )

    def _publish(self, wave: range, watchdog: Watchdog) -> WaveRun:
        """Publish ``wave``, riding out a broker or backend that goes away meanwhile.

        Part of the wave may be out when one fails (a chord's header is many messages):
        once both answer again, the chunks go out again as plain tasks (the same task
        ids: a chunk delivered twice is counted once), and the hub's own tally stands in
        for the chord's callback, as after any loss of the chord's state.
        """

        def wait(exc: BaseException) -> None:
            self.recovery.wait_for_services(watchdog, exc)

        # The backend may fail reading a resumed wave's results.
        run = riding_out(lambda: self.publisher.wave(wave), wait)
        tries = itertools.chain([self.publisher.send], itertools.repeat(self.publisher.resend))
        riding_out(lambda: next(tries)(run), wait)
        return run

    @contextlib.contextmanager
    def _job_errors(self) -> Iterator[None]:
        """Translate what can go wrong mid-job into the hub's errors."""
        try:
            with self.client.connection_errors():
                yield
        except TallyError as exc:
            raise JobFailed(f"chunk results do not add up: {exc}") from None
        except MalformedMessage as exc:
            raise JobFailed(f"a worker returned a malformed result: {exc}") from None

    def _collect_first(self, tally: JobTally, watchdog: Watchdog) -> None:
        # Popped only once collected: until then a backend that loses its data must
        # have this wave's missing chunks sent again, and a failing job revokes them.
        tally.fold(self._collect(self.in_flight[0], watchdog))
        self.in_flight.pop(0)

    def _collect(self, run: WaveRun, watchdog: Watchdog) -> WaveTally:
        """Wait for a wave's chunks (progress, telemetry), then judge its callback's totals."""
        for result in run.counted_before:
            self.counted(result)
        while not run.tally.complete:
            with self.recovery.outage(watchdog):
                for ready in self._chunks(run, watchdog):
                    self._take(run, ready, watchdog)
        callback = run.callback_id
        if callback and self.backups.helped(run.tally.indices) and not run.callback_lost:
            # The chord's callback waits on every original copy, the stuck one too: the
            # hub's own tally of the wave stands, and the callback is withdrawn.
            run.callback_lost = True
            self.client.revoke([callback])
        while callback and not run.callback_lost:
            assert run.group_id is not None  # a wave with a callback went out as a chord
            with self.recovery.outage(watchdog):
                self._judge(run, callback, watchdog)
                break
        run.collected = True
        if callback:
            wave_bytes = len(run.ids) * self.poller.largest + self.job_bytes
            self.largest_message = max(self.largest_message, wave_bytes)
        done = [*run.ids, *([callback] if callback else [])]
        self.arrivals.forget(done)
        # Counted and journaled: the results are the hub's now, and a resume reads them
        # from its journal. They leave Redis shortly, not after result_expires.
        self.client.expire_soon(done)
        return run.tally

    def _chunks(self, run: WaveRun, watchdog: Watchdog) -> Iterator[Ready]:
        """Ready results of ``run``'s missing chunks (every copy), and of late copies;
        between polls the watchdog runs and overdue chunks get backups."""

        def beat() -> None:
            watchdog.check()
            missing = run.missing()
            self.backups.tick(missing, time.monotonic())
            out = sum(r.tally.left for r in self.in_flight)
            running = self.backups.running_chunks(missing)
            self.busy(Busy(out, min(running, out), self.backups.books.sent))

        return self.poller.until(
            watch=lambda: self.backups.watched(run.missing()),
            finished=lambda: run.tally.complete,
            beat=beat,
        )

    def _take(self, run: WaveRun, ready: Ready, watchdog: Watchdog) -> None:
        """Count a chunk's result (or let the backups judge a second copy of it)."""
        task_id, index, meta = ready
        result = self.backups.result(task_id, index, meta, run.tally)
        if result is not None and run.tally.add(result):
            self.counted(result)
            watchdog.progressed()

    def _judge(self, run: WaveRun, callback: str, watchdog: Watchdog) -> None:
        """Wait for the wave's callback and judge it, or see that it will not come."""
        assert run.group_id is not None
        watch = chords.ChordWatch(self.client.results, run.group_id)
        pending = {callback: -1}
        arrived = next(
            self.poller.until(
                watch=lambda: pending,
                finished=watch.stalled,
                beat=watchdog.check,
            ),
            None,
        )
        if arrived is None:
            run.callback_lost = True
            self.client.revoke([callback])
            self.notes.append(chords.lost(run.tally.indices, watch, run.ids))
            return
        note = chords.verdict(run.tally, arrived[2])
        if note is not None:
            self.notes.append(note)
