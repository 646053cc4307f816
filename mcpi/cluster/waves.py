"""One job on the cluster: its waves as chords, collected as they come, recovered if lost.

For each wave the hub publishes one chord: a header of ``mcpi.count_chunk`` tasks and a
``mcpi.tally_wave`` callback. While the wave runs, the hub polls the chunks' results
(progress, per-host telemetry) into its own :class:`~mcpi.core.tally.WaveTally`, then
reads the callback's totals and checks that both agree. The next wave is queued while
the current one is collected, so no slot idles at a wave's end.

A :class:`ClusterJob` lives for one run of one job and holds everything that run needs
to finish it: the waves in flight (what a backend that lost its data must be sent
again), what a resumed job found counted before, and the notes for the report.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from celery import chord, states

from mcpi.cluster import chords
from mcpi.cluster.app import KEY_PREFIX
from mcpi.cluster.arrivals import Arrivals, Listeners
from mcpi.cluster.backups import Backups
from mcpi.cluster.chunks import (
    chunk_group,
    chunk_result,
    chunk_signature,
    chunk_task_id,
    describe_failure,
    wave_task_id,
)
from mcpi.cluster.client import REDIS_ERRORS, ClusterClient
from mcpi.cluster.tasks import TALLY_WAVE
from mcpi.cluster.watchdog import Watchdog
from mcpi.core.chunk import ChunkResult
from mcpi.core.job import Job
from mcpi.core.messages import MalformedMessage, decode_sums, encode_job
from mcpi.core.tally import JobTally, TallyError, WaveTally
from mcpi.errors import JobFailed, Unreachable

#: Polls of the result backend (one MGET of the outstanding ids each) follow a result
#: after FIRST_POLL_SECONDS and back off, doubling, to POLL_SECONDS while none comes; a
#: result announced by the backend (:mod:`mcpi.cluster.arrivals`) ends the wait at once.
#: So a chunk is seen within a round trip of landing, and a long wave costs Redis about
#: ten polls a second.
FIRST_POLL_SECONDS = 0.002
POLL_SECONDS = 0.1


@dataclass
class WaveRun:
    """A published wave: its chunks' task ids, its callback's, and what has come back."""

    ids: dict[str, int]
    #: None for a wave of one chunk, published alone: its tally is its one result.
    callback_id: str | None
    tally: WaveTally
    #: The chord's header group, whose state the backend keeps (None: no chord).
    group_id: str | None = None
    collected: bool = False
    #: The backend lost the chord's state (or the wave was resumed in part): its
    #: callback will not come.
    callback_lost: bool = False
    #: Of a resumed job: the wave's results found counted before it was sent.
    counted_before: list[ChunkResult] = field(default_factory=list)

    def missing(self) -> dict[str, int]:
        """Task ids (and chunk indices) whose results the hub has not counted."""
        return {t: i for t, i in self.ids.items() if not self.tally.has(i)}

    def outstanding(self) -> list[str]:
        """Task ids whose results nobody has collected yet."""
        if self.collected:
            return []
        return [*self.missing(), *([self.callback_id] if self.callback_id else [])]


class ClusterJob:
    """One run of ``job`` on the cluster behind ``client``, in waves of ``wave_chunks`` chunks.

    ``counted`` is told of every chunk as the hub counts it. ``earlier`` is None for a
    fresh run; a resumed run takes those results (the hub's journal), then the ones
    the backend still holds from an earlier run of the same job; up to
    ``backup_slots`` backup copies of overdue chunks may be out at once (0: none). Its
    subscription to the backend's announcements comes from ``listeners`` (kept between
    jobs).
    """

    def __init__(
        self,
        client: ClusterClient,
        job: Job,
        wave_chunks: int,
        counted: Callable[[ChunkResult], None],
        earlier: Sequence[ChunkResult] | None,
        backup_slots: int,
        listeners: Listeners,
    ) -> None:
        self.client = client
        self.app = client.app
        self.results = client.results
        self.settings = client.settings
        self.job = job
        self.wave_chunks = wave_chunks
        self.counted = counted
        #: Chunks of a resumed job found counted already (None: not resuming), from
        #: the hub's journal and from the backend.
        self.resumed: int | None = 0 if earlier is not None else None
        self.from_journal = 0
        self.journaled = {r.chunk.index: r for r in earlier or ()}
        self.in_flight: list[WaveRun] = []
        self.notes: list[str] = []
        self.backups = Backups(client, job, backup_slots)
        self.arrivals = Arrivals(listeners)

    def run(self, deadline: float | None) -> JobTally:
        """Run the job wave by wave, the next wave queued while the current one is counted.

        Keeping the next wave in the queue means no slot idles at a wave's end (the
        queue is FIFO, so it only starts once the current wave is handed out), while
        at most two waves' bookkeeping exists at a time. A resumed job takes the
        chunks whose results the backend still holds (a hub died after they were
        counted) from it, and sends only the others.
        """
        job, in_flight = self.job, self.in_flight
        tally = JobTally(job.plan, job.width)
        watchdog = Watchdog(
            deadline,
            counted=lambda: f"{tally.chunks} of {job.plan.chunk_count}",
            live_workers=self.client.live_workers,
            grace=self.settings.worker_grace,
            check_state=self.check_job_state,
        )
        try:
            with self._job_errors():
                self._mark_job()
                for wave in job.plan.waves(self.wave_chunks):
                    in_flight.append(self._submit(wave))
                    if len(in_flight) == 2:
                        self._collect_first(tally, watchdog)
                while in_flight:
                    self._collect_first(tally, watchdog)
                # One last look at copies still out: a late one that disagrees is caught.
                self.backups.finish(self._poll(dict(self.backups.late)))
            if self.resumed:
                self.notes.append(
                    f"resumed: {self.resumed:,} chunk(s) counted before were taken, not "
                    f"recomputed: {self.from_journal:,} from the hub's journal, "
                    f"{self.resumed - self.from_journal:,} from the result backend"
                )
        finally:
            # A failing job withdraws the work nobody will collect.
            for run in in_flight:
                self.client.revoke(run.outstanding())
            self.backups.withdraw()
            self.arrivals.close()
            note = self.backups.note()
            if note:
                self.notes.append(note)
        return tally

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

    def _submit(self, wave: range) -> WaveRun:
        """Publish one wave as a chord: its chunks, and the callback that tallies them.

        A wave of one chunk is published as that chunk's task alone: a callback would
        only repeat its one result, and costs a task and the hub a wait (a sweep's
        small jobs are one chunk each).
        """
        job = self.job
        run = WaveRun(
            ids={chunk_task_id(job.id, i): i for i in wave},
            callback_id=wave_task_id(job.id, wave.start) if len(wave) > 1 else None,
            tally=WaveTally(job.plan, wave, job.width),
        )
        if self.resumed is not None:
            counted = self._counted_before(run)
            if counted:
                # Only the rest is sent, as plain tasks: a chord of part of a wave
                # would have a callback that cannot see the chunks counted before.
                self.resumed += len(counted)
                run.counted_before = counted
                run.callback_lost = True
                missing = run.missing()
                self.arrivals.expect(run.outstanding())
                if missing:
                    chunk_group(self.app, job, missing).apply_async()
                return run
        self.arrivals.expect(run.outstanding())
        if run.callback_id is None:
            ((task_id, index),) = run.ids.items()
            chunk_signature(self.app, job, index, task_id).apply_async()
            return run
        callback = self.app.tasks[TALLY_WAVE].signature(
            (encode_job(job), wave.start, wave.stop), task_id=run.callback_id
        )
        sent = chord(chunk_group(self.app, job, run.ids), callback).apply_async()
        run.group_id = sent.parent.id
        return run

    def _counted_before(self, run: WaveRun) -> list[ChunkResult]:
        """Results the hub's journal, or else the backend, holds for ``run``'s chunks,
        added to its tally."""
        counted = []
        for index in run.tally.indices:
            result = self.journaled.pop(index, None)
            if result is not None and run.tally.add(result, earlier=True):
                counted.append(result)
        self.from_journal += len(counted)
        ids = [t for t, i in run.ids.items() if not run.tally.has(i)]
        if not ids:
            return counted
        backend = self.results
        values = backend.client.mget([backend.get_key_for_task(t) for t in ids])
        for task_id, value in zip(ids, values, strict=True):
            if value is None:
                continue
            meta = backend.decode_result(value)
            if meta.get("status") != states.SUCCESS:
                continue  # failed or unknown: sent again
            result = chunk_result(run.ids[task_id], meta)
            if run.tally.add(result, earlier=True):
                counted.append(result)
        return counted

    def _collect(self, run: WaveRun, watchdog: Watchdog) -> WaveTally:
        """Wait for a wave's chunks (progress, telemetry), then check its callback's totals."""
        for result in run.counted_before:
            self.counted(result)
        while not run.tally.complete:
            with self._backend_outage(watchdog):
                for task_id, index, meta in self._arrivals(run, watchdog):
                    self._take(run, task_id, index, meta, watchdog)
        callback = run.callback_id
        if callback and self.backups.helped(run.tally.indices) and not run.callback_lost:
            # The chord's callback waits on every original copy, the stuck one too: the
            # hub's own tally of the wave stands, and the callback is withdrawn.
            run.callback_lost = True
            self.client.revoke([callback])
        while callback and not run.callback_lost:
            assert run.group_id is not None  # a wave with a callback went out as a chord
            watch = chords.ChordWatch(self.results, run.group_id)
            with self._backend_outage(watchdog):
                arrived = next(self._ready({callback: -1}, watchdog, watch.stalled), None)
                if arrived is None:
                    self._chord_lost(run, watch)
                else:
                    self._check_callback(run.tally, arrived[2])
                break
        run.collected = True
        self.arrivals.forget([*run.ids, *([callback] if callback else [])])
        return run.tally

    def _take(
        self, run: WaveRun, task_id: str, index: int, meta: dict[str, Any], watchdog: Watchdog
    ) -> None:
        """Count a chunk's result (or judge a second copy of it)."""
        if self.backups.dropped(task_id, meta):
            return
        result = chunk_result(index, meta)
        if result.chunk.index != index:
            raise JobFailed(
                f"the result stored for chunk {index} is for chunk {result.chunk.index}"
            )
        if self.backups.arrived(task_id, index, result, run.tally) and run.tally.add(result):
            self.counted(result)
            watchdog.progressed()

    def _arrivals(
        self, run: WaveRun, watchdog: Watchdog
    ) -> Iterator[tuple[str, int, dict[str, Any]]]:
        """Ready results of ``run``'s missing chunks (every copy), and of late copies.

        Between polls the watchdog runs and overdue chunks get backups.
        """
        pause = self._pause()
        while not run.tally.complete:
            watched = self.backups.watched(run.missing())
            self.arrivals.expect(watched)  # backup copies sent since the last poll
            arrived = self._poll(watched)
            yield from arrived
            if run.tally.complete:
                return
            watchdog.check()
            self.backups.check(run.missing(), time.monotonic())
            self.arrivals.wait(pause)
            pause = self._pause(pause, bool(arrived))

    def _ready(
        self, ids: dict[str, int], watchdog: Watchdog, stop: Callable[[], bool] | None = None
    ) -> Iterator[tuple[str, int, dict[str, Any]]]:
        """Ready results of ``ids`` as they arrive; the watchdog runs between polls, and
        the wait ends early if ``stop`` says the rest will not come."""
        pause = self._pause()
        ids = dict(ids)
        while ids:
            arrived = self._poll(ids)
            for task_id, index, meta in arrived:
                del ids[task_id]
                yield task_id, index, meta
            if not ids or (stop is not None and stop()):
                return
            watchdog.check()
            self.arrivals.wait(pause)
            pause = self._pause(pause, bool(arrived))

    def _pause(self, last: float | None = None, arrived: bool = True) -> float:
        """How long the next wait may last. Announced results end it early, so it is
        only the watchdog's and the backups' beat; polling on a timer (the announcements
        failed) it starts short after each arrival and doubles up to that beat."""
        if self.arrivals.live:
            return POLL_SECONDS
        return FIRST_POLL_SECONDS if arrived or last is None else min(POLL_SECONDS, 2 * last)

    def _poll(self, ids: dict[str, int]) -> list[tuple[str, int, dict[str, Any]]]:
        """One MGET of ``ids``: the ready results (task id, chunk, meta).

        A copy seen in the ``STARTED`` state is told to the backups' books: when and
        where it runs is what says it is overdue.
        """
        if not ids:
            return []
        backend = self.results
        keys = list(ids)
        values = backend.client.mget([backend.get_key_for_task(t) for t in keys])
        now = time.monotonic()
        ready = []
        for task_id, value in zip(keys, values, strict=True):
            if value is None:
                continue
            meta = backend.decode_result(value)
            if meta["status"] in states.READY_STATES:
                ready.append((task_id, ids[task_id], meta))
            elif meta["status"] == states.STARTED:
                self.backups.saw_running(task_id, meta.get("result"), now)
        return ready

    @contextlib.contextmanager
    def _backend_outage(self, watchdog: Watchdog) -> Iterator[None]:
        """Ride out a result-backend restart: wait (bounded) for it, then check its state.

        Raises :class:`Unreachable` if the backend stays away for ``worker_grace``.
        """
        try:
            yield
        except REDIS_ERRORS as exc:
            give_up = time.monotonic() + self.settings.worker_grace
            while True:
                watchdog.check_deadline()
                try:
                    self.results.client.ping()
                    break
                except REDIS_ERRORS:
                    if time.monotonic() >= give_up:
                        raise Unreachable(
                            f"lost the result backend at {self.client.backend} for more than "
                            f"{self.settings.worker_grace:.0f}s: {exc}"
                        ) from None
                    time.sleep(1)
            self.check_job_state()

    def _job_key(self) -> str:
        return f"{KEY_PREFIX}job-{self.job.id}"

    def _mark_job(self) -> None:
        """A key that lives as long as the job's results: its loss means theirs."""
        self.results.client.set(self._job_key(), "1", ex=self.settings.result_expires)

    def check_job_state(self) -> None:
        """Recover if the backend lost the job's state (restarted without its data).

        Chunk results the hub has already read are in its own tally; everything else
        of the waves in flight is published again (same task ids, plain tasks: the
        chords' counters are gone, so their callbacks cannot fire and are not awaited).
        Counts are pure functions of the chunk, so recomputing changes nothing.
        """
        if self.results.client.exists(self._job_key()):
            return
        resent = 0
        for run in self.in_flight:
            missing = run.missing()
            chunk_group(self.app, self.job, missing).apply_async()
            run.callback_lost = True
            resent += len(missing)
        self._mark_job()
        self.notes.append(
            f"the result backend lost this job's state mid-job (restarted without its "
            f"data?); {resent} chunk(s) not yet collected were sent again, and the "
            "hub's own tally replaced the chord callbacks' cross-check"
        )

    def _chord_lost(self, run: WaveRun, watch: chords.ChordWatch) -> None:
        """The wave's callback will not come: the hub's own tally of the wave stands."""
        assert run.callback_id is not None
        run.callback_lost = True
        self.client.revoke([run.callback_id])
        wave = run.tally.indices
        lost = watch.uncounted(run.ids)
        why = (
            f"chunk(s) {', '.join(map(str, lost))} stored a result that the chord never "
            "counted (a worker process lost in between)"
            if lost
            else "the worker process that completed the chord was lost before sending it"
        )
        self.notes.append(
            f"the chord callback of chunks {wave.start}-{wave.stop - 1} will not come: "
            f"{why}; the hub's own tally of the wave was used"
        )

    def _check_callback(self, tally: WaveTally, meta: dict[str, Any]) -> None:
        wave = tally.indices
        if meta["status"] == states.SUCCESS:
            totals = meta["result"]
            try:
                agree = (decode_sums(totals), totals.get("darts")) == (tally.sums, tally.darts)
            except MalformedMessage:
                agree = False
            if not agree:
                raise JobFailed(
                    f"the chord callback of chunks {wave.start}-{wave.stop - 1} does not "
                    "agree with the hub's own tally of them"
                )
            return
        failure = meta.get("result") or {}
        if failure.get("exc_type") == "MissingChunks" and tally.complete:
            # A duplicated delivery made the chord fire before its last chunk: the
            # callback saw the gap and refused; the hub's own tally has every chunk.
            self.notes.append(
                f"the chord callback of chunks {wave.start}-{wave.stop - 1} fired early "
                "(a chunk was delivered twice); the hub's own complete tally was used"
            )
            return
        raise JobFailed(
            f"the chord callback of chunks {wave.start}-{wave.stop - 1} failed: "
            + describe_failure(meta)
        )
