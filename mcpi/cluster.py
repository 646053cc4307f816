"""Running a job on the Celery cluster: preflight checks, chords per wave, a watched wait.

For each wave the hub publishes one chord: a header of ``mcpi.count_chunk`` tasks with
ids ``mcpi-<job>-<chunk>`` and a ``mcpi.tally_wave`` callback. While the wave runs, the
hub polls the chunks' results (progress, per-host telemetry) into its own
:class:`~mcpi.tally.WaveTally`, then reads the callback's totals and checks that both
agree. The hub never waits blindly: a deadline, and a watchdog that pings the workers
when results stop coming, bound every wait.
"""

from __future__ import annotations

import contextlib
import secrets
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import redis.exceptions
from amqp.exceptions import AccessRefused, NotAllowed
from celery import chord, group, states
from kombu.exceptions import OperationalError

from mcpi import __version__
from mcpi.app import KEY_PREFIX, create_app
from mcpi.errors import JobFailed, JobTimeout, NoWorkers, Unreachable
from mcpi.job import Job, MalformedMessage
from mcpi.plan import Chunk, Plan
from mcpi.progress import Progress
from mcpi.rates import MIN_LEARNING_SECONDS, RateBook
from mcpi.records import ChunkJournal
from mcpi.settings import Settings
from mcpi.stats import HostWork
from mcpi.tally import ChunkResult, JobTally, TallyError, WaveTally
from mcpi.tasks import COUNT_CHUNK, TALLY_WAVE
from mcpi.tuning import Capacity, HostRate, wave_size

#: Seconds between polls of the result backend while a wave runs: short enough that
#: the end of a wave is seen within a few percent of a tuned chunk's time, long enough
#: that the polls (one MGET of the outstanding ids) cost Redis nothing noticeable.
POLL_SECONDS = 0.1
#: Seconds the hub listens for workers' replies to a broadcast.
REPLY_SECONDS = 1.0
#: With no new result for this long, the hub checks that some worker is still alive.
STALL_SECONDS = 10.0
#: Seconds between checks that the result backend still holds the job's state.
STATE_CHECK_SECONDS = 2.0

#: Calibration: darts per rate-measuring chunk (~0.1 s on a current core) and such
#: chunks per slot; 1-dart chunks per slot in the larger batch for the overhead.
CALIBRATION_DARTS = 1 << 24
CALIBRATION_CHUNKS_PER_SLOT = 2
OVERHEAD_CHUNKS_PER_SLOT = 8
#: The per-task overhead is taken as at least this (a measurement can undershoot).
MIN_TASK_OVERHEAD = 0.001

REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def chunk_task_id(job_id: str, index: int) -> str:
    return f"mcpi-{job_id}-{index}"


def wave_task_id(job_id: str, first: int) -> str:
    return f"mcpi-{job_id}-wave-{first}"


class Cluster:
    """The workers behind the configured broker and result backend."""

    mode = "cluster"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings, role="hub")
        # Bound every backend round trip: a silent Redis must not stall the hub for
        # the client's default two minutes.
        self.app.conf.redis_socket_timeout = settings.connect_timeout + 5
        self.workers: dict[str, dict[str, Any]] = {}
        self.slots = 0
        self.notes: list[str] = []
        # The job being run, and its waves in flight (for recovery after a backend loss).
        self._job: Job | None = None
        self._in_flight: list[WaveRun] = []
        # Chunks of a resumed job found counted already (None: not resuming).
        self._resumed: int | None = None
        self.rate_book = RateBook(
            settings.cache_dir / "rates.json" if settings.cache_dir else None,
            cluster=self.where,
            version=__version__,
        )

    @property
    def where(self) -> str:
        """The cluster's name: its broker's ``host:port/vhost``."""
        return where_of(self.settings.broker_url) + "/" + _vhost(self.settings.broker_url)

    @property
    def description(self) -> str:
        return (
            f"cluster at {where_of(self.settings.broker_url)}: "
            f"{len(self.workers)} worker(s), {self.slots} slot(s)"
        )

    def prepare(self) -> int:
        """Check the broker, the backend and the workers; return the workers' slots."""
        self.check_broker()
        self.check_backend()
        with self._connection_errors():
            stats = self.app.control.inspect(timeout=REPLY_SECONDS).stats() or {}
        if not stats:
            raise NoWorkers(
                f"no mcpi worker answered within {REPLY_SECONDS:.0f}s on the broker at "
                f"{where_of(self.settings.broker_url)} (are the workers running? "
                "use --local to run on this machine)"
            )
        self.workers = stats
        self.slots = sum(concurrency(s) for s in stats.values())
        return self.slots

    def slots_by_host(self) -> dict[str, int]:
        """Worker slots per host (a node ``name@host`` counts for ``host``)."""
        slots: dict[str, int] = {}
        for node, stats in self.workers.items():
            host = node.partition("@")[2] or node
            slots[host] = slots.get(host, 0) + concurrency(stats)
        return slots

    def capacity(self, recalibrate: bool = False) -> Capacity:
        """The workers' rates: learnt from earlier runs if fresh, else calibrated now."""
        if not recalibrate:
            known = self.rate_book.capacity(self.slots_by_host())
            if known is not None:
                return known
        return self.calibrate()

    def calibrate(self) -> Capacity:
        """Measure each host's per-slot kernel rate and the per-task overhead.

        Two short groups of real chunk tasks on every slot: chunks of
        ``CALIBRATION_DARTS`` (their telemetry gives each host's rate while all slots
        are busy), then 1-dart chunks (their throughput gives the overhead one task
        costs a slot: publish, deliver, store, collect).
        """
        with self._connection_errors():
            measured = self._calibration_rates()
            overhead = self._calibration_overhead()
        typical = statistics.median(measured.values())
        hosts = [
            HostRate(host, slots, measured.get(host, typical), _source(host, measured))
            for host, slots in self.slots_by_host().items()
        ]
        self.rate_book.record([h for h in hosts if h.source == "calibrated"], overhead)
        return Capacity.of(hosts, overhead)

    def learn(self, work: Mapping[str, HostWork]) -> None:
        """Remember the per-slot rates a finished job's telemetry shows."""
        slots = self.slots_by_host()
        learnt = [
            HostRate(host, slots[host], w.darts / w.busy_seconds, source="learnt")
            for host, w in work.items()
            if host in slots and w.busy_seconds >= MIN_LEARNING_SECONDS
        ]
        if learnt:
            self.rate_book.record(learnt, task_overhead=None)

    def _calibration_rates(self) -> dict[str, float]:
        chunks = self.slots * CALIBRATION_CHUNKS_PER_SLOT
        results = self._run_group(Plan(chunks * CALIBRATION_DARTS, CALIBRATION_DARTS))
        per_host: dict[str, list[float]] = {}
        for result in results:
            seconds = max(result.telemetry.seconds, 1e-9)
            per_host.setdefault(result.telemetry.host, []).append(result.chunk.darts / seconds)
        return {host: statistics.median(rates) for host, rates in per_host.items()}

    def _calibration_overhead(self) -> float:
        """Slot-seconds one more task costs: the slope between two batches of 1-dart chunks.

        The slope, not one batch's average, so that the fixed latency of any job
        (first delivery, last poll) is not mistaken for a per-task cost.
        """
        small, large = self.slots, self.slots * OVERHEAD_CHUNKS_PER_SLOT
        walls = []
        for chunks in (small, large):
            began = time.monotonic()
            self._run_group(Plan(chunks, 1))
            walls.append(time.monotonic() - began)
        per_task = (walls[1] - walls[0]) / (large - small)
        return max(MIN_TASK_OVERHEAD, per_task * self.slots)

    def _run_group(self, plan: Plan) -> list[ChunkResult]:
        """Count every chunk of a throw-away job of ``plan`` on the workers; no chord."""
        job = Job(id="calibrate-" + secrets.token_hex(6), seed=secrets.randbits(64), plan=plan)
        ids = {chunk_task_id(job.id, c.index): c.index for c in plan.chunks()}
        self._chunk_group(job, ids).apply_async()
        watchdog = Watchdog(
            self, time.monotonic() + max(60.0, self.settings.worker_grace), str, job_state=False
        )
        results = []
        try:
            for task_id, meta in self.app.backend.get_many(
                set(ids), interval=0.005, on_interval=watchdog.check
            ):
                results.append(_chunk_result(ids[task_id], meta))
        except JobTimeout:
            self._revoke(list(ids))
            raise JobTimeout("the workers did not finish a calibration in time") from None
        finally:
            with contextlib.suppress(*REDIS_ERRORS):
                self.app.backend.client.delete(*(self.app.backend.get_key_for_task(t) for t in ids))
        return results

    def check_broker(self) -> None:
        where = where_of(self.settings.broker_url)
        try:
            with self.app.connection_for_write() as connection:
                connection.ensure_connection(
                    max_retries=1,
                    interval_start=0,
                    interval_step=0,
                    timeout=self.settings.connect_timeout,
                )
        except (AccessRefused, NotAllowed) as exc:
            user = urlsplit(self.settings.broker_url or "").username
            raise Unreachable(
                f"the broker at {where} refused user {user!r} "
                f"(wrong user name, password or vhost): {exc.reply_text}"
            ) from None
        except (OperationalError, OSError) as exc:
            raise Unreachable(f"cannot reach the broker at {where}: {exc}") from None

    def check_backend(self) -> None:
        where = where_of(self.settings.result_backend)
        try:
            self.app.backend.client.ping()
        except redis.exceptions.AuthenticationError:
            raise Unreachable(
                f"the result backend at {where} refused the credentials "
                "(wrong user name or password)"
            ) from None
        except redis.exceptions.ResponseError as exc:
            raise Unreachable(
                f"the result backend at {where} refused the connection: {exc}"
            ) from None
        except (*REDIS_ERRORS, OSError) as exc:
            raise Unreachable(f"cannot reach the result backend at {where}: {exc}") from None

    def run(
        self,
        job: Job,
        progress: Progress,
        deadline: float | None,
        resume: bool = False,
        journal: ChunkJournal | None = None,
    ) -> JobTally:
        """Run ``job`` wave by wave, the next wave queued while the current one is counted.

        Keeping the next wave in the queue means no slot idles at a wave's end (the
        queue is FIFO, so it only starts once the current wave is handed out), while
        at most two waves' bookkeeping exists at a time. With ``resume``, chunks whose
        results the backend still holds (a hub died after they were counted) are taken
        from it, not sent again. (``journal`` is the local pool's; the backend is the
        cluster's.)
        """
        self._resumed = 0 if resume else None
        tally = JobTally(job.plan)
        watchdog = Watchdog(self, deadline, lambda: f"{tally.chunks} of {job.plan.chunk_count}")
        in_flight: list[WaveRun] = []
        self._job, self._in_flight = job, in_flight
        try:
            with self._job_errors():
                self._mark_job()
                for wave in job.plan.waves(wave_size(self.slots, self.settings.wave_chunks)):
                    in_flight.append(self._submit_wave(job, wave))
                    if len(in_flight) == 2:
                        tally.fold(self._collect_wave(in_flight[0], progress, watchdog))
                        in_flight.pop(0)
                while in_flight:
                    tally.fold(self._collect_wave(in_flight[0], progress, watchdog))
                    in_flight.pop(0)
            if self._resumed:
                self.notes.append(
                    f"resumed: {self._resumed:,} chunk(s) counted before were read from the "
                    "result backend, not recomputed"
                )
        finally:
            # A failing job withdraws the work nobody will collect.
            for run in in_flight:
                self._revoke(run.outstanding())
        return tally

    @contextlib.contextmanager
    def _job_errors(self) -> Iterator[None]:
        """Translate what can go wrong mid-job into the hub's errors."""
        try:
            with self._connection_errors():
                yield
        except TallyError as exc:
            raise JobFailed(f"chunk results do not add up: {exc}") from None
        except MalformedMessage as exc:
            raise JobFailed(f"a worker returned a malformed result: {exc}") from None

    @contextlib.contextmanager
    def _connection_errors(self) -> Iterator[None]:
        """A lost broker or result backend, as :class:`Unreachable` naming it."""
        try:
            yield
        except REDIS_ERRORS as exc:
            raise Unreachable(
                f"lost the result backend at {where_of(self.settings.result_backend)}: {exc}"
            ) from None
        except (OperationalError, ConnectionError) as exc:
            raise Unreachable(
                f"lost the broker at {where_of(self.settings.broker_url)}: {exc}"
            ) from None

    def _chunk_group(self, job: Job, ids: Mapping[str, int]) -> Any:
        """A group of ``mcpi.count_chunk`` tasks: chunk ``i`` of ``job`` as task ``id``."""
        message = job.to_message()
        count = self.app.tasks[COUNT_CHUNK]
        return group(
            count.signature((message, _chunk_message(job.plan.chunk(i))), task_id=task_id)
            for task_id, i in ids.items()
        )

    def _submit_wave(self, job: Job, wave: range) -> WaveRun:
        """Publish one wave as a chord: its chunks, and the callback that tallies them."""
        plan, message = job.plan, job.to_message()
        run = WaveRun(
            ids={chunk_task_id(job.id, i): i for i in wave},
            callback_id=wave_task_id(job.id, wave.start),
            tally=WaveTally(plan, wave),
        )
        if self._resumed is not None:
            counted = self._counted_before(run)
            if counted:
                # Only the rest is sent, as plain tasks: a chord of part of a wave
                # would have a callback that cannot see the chunks counted before.
                self._resumed += len(counted)
                run.counted_before = counted
                run.callback_lost = True
                missing = {t: i for t, i in run.ids.items() if not run.tally.has(i)}
                if missing:
                    self._chunk_group(job, missing).apply_async()
                return run
        header = self._chunk_group(job, run.ids)
        callback = self.app.tasks[TALLY_WAVE].signature(
            (message, wave.start, wave.stop), task_id=run.callback_id
        )
        chord(header, callback).apply_async()
        return run

    def _counted_before(self, run: WaveRun) -> list[ChunkResult]:
        """Results the backend holds for ``run``'s chunks, added to its tally."""
        ids = list(run.ids)
        backend = self.app.backend
        values = backend.client.mget([backend.get_key_for_task(t) for t in ids])
        counted = []
        for task_id, value in zip(ids, values, strict=True):
            if value is None:
                continue
            meta = backend.decode_result(value)
            if meta.get("status") != states.SUCCESS:
                continue  # failed or unknown: sent again
            result = _chunk_result(run.ids[task_id], meta)
            if run.tally.add(result, earlier=True):
                counted.append(result)
        return counted

    def _collect_wave(self, run: WaveRun, progress: Progress, watchdog: Watchdog) -> WaveTally:
        """Wait for a wave's chunks (progress, telemetry), then check its callback's totals."""
        for result in run.counted_before:
            progress.counted(result)
        pending = {t for t, i in run.ids.items() if not run.tally.has(i)}
        while pending:
            with self._backend_outage(watchdog):
                for task_id, meta in self._results(pending, watchdog):
                    pending.discard(task_id)
                    index = run.ids[task_id]
                    result = _chunk_result(index, meta)
                    if result.chunk.index != index:
                        raise JobFailed(
                            f"the result stored for chunk {index} is for chunk {result.chunk.index}"
                        )
                    if run.tally.add(result):
                        progress.counted(result)
                        watchdog.progressed()
        while not run.callback_lost:
            with self._backend_outage(watchdog):
                for _, meta in self._results({run.callback_id}, watchdog):
                    self._check_callback(run.tally.indices, run.tally, meta)
                break
        run.collected = True
        return run.tally

    @contextlib.contextmanager
    def _backend_outage(self, watchdog: Watchdog) -> Iterator[None]:
        """Ride out a result-backend restart: wait (bounded) for it, then check its state.

        Raises :class:`Unreachable` if the backend stays away for ``worker_grace``.
        """
        try:
            yield
        except REDIS_ERRORS as exc:
            where = where_of(self.settings.result_backend)
            give_up = time.monotonic() + self.settings.worker_grace
            while True:
                watchdog.check_deadline()
                try:
                    self.app.backend.client.ping()
                    break
                except REDIS_ERRORS:
                    if time.monotonic() >= give_up:
                        raise Unreachable(
                            f"lost the result backend at {where} for more than "
                            f"{self.settings.worker_grace:.0f}s: {exc}"
                        ) from None
                    time.sleep(1)
            self.check_job_state()

    def _running(self) -> Job:
        if self._job is None:
            raise RuntimeError("no job is running")
        return self._job

    def _job_key(self) -> str:
        return f"{KEY_PREFIX}job-{self._running().id}"

    def _mark_job(self) -> None:
        """A key that lives as long as the job's results: its loss means theirs."""
        self.app.backend.client.set(self._job_key(), "1", ex=self.settings.result_expires)

    def check_job_state(self) -> None:
        """Recover if the backend lost the job's state (restarted without its data).

        Chunk results the hub has already read are in its own tally; everything else
        of the waves in flight is published again (same task ids, plain tasks: the
        chords' counters are gone, so their callbacks cannot fire and are not awaited).
        Counts are pure functions of the chunk, so recomputing changes nothing.
        """
        if self.app.backend.client.exists(self._job_key()):
            return
        resent = 0
        job = self._running()
        for run in self._in_flight:
            missing = {t: i for t, i in run.ids.items() if not run.tally.has(i)}
            self._chunk_group(job, missing).apply_async()
            run.callback_lost = True
            resent += len(missing)
        self._mark_job()
        self.notes.append(
            f"the result backend lost this job's state mid-job (restarted without its "
            f"data?); {resent} chunk(s) not yet collected were sent again, and the "
            "hub's own tally replaced the chord callbacks' cross-check"
        )

    def _results(self, ids: set[str], watchdog: Watchdog) -> Iterator[tuple[str, dict[str, Any]]]:
        """Ready results of ``ids`` as they arrive; the watchdog runs between polls."""
        yield from self.app.backend.get_many(ids, interval=POLL_SECONDS, on_interval=watchdog.check)

    def _check_callback(self, wave: range, tally: WaveTally, meta: dict[str, Any]) -> None:
        if meta["status"] == states.SUCCESS:
            totals = meta["result"]
            if (totals.get("hits"), totals.get("darts")) != (tally.hits, tally.darts):
                raise JobFailed(
                    f"the chord callback of chunks {wave.start}-{wave.stop - 1} counted "
                    f"{totals.get('hits')} hits, the hub {tally.hits}"
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

    def _revoke(self, task_ids: list[str]) -> None:
        """Withdraw work nobody will collect (best effort: the broker may be gone)."""
        # The job is failing already: report that, not a second error from the revoke.
        with contextlib.suppress(Exception):
            self.app.control.revoke(task_ids)

    def worker_nodes(self) -> list[str]:
        """The workers answering a ping now (``name@host``); none if the broker is gone."""
        try:
            replies = self.app.control.ping(timeout=REPLY_SECONDS) or []
        except (OperationalError, OSError):
            return []
        return [node for reply in replies for node in reply]

    def live_workers(self) -> int:
        return len(self.worker_nodes())

    def close(self) -> None:
        """Release the connections this hub opened.

        Not ``app.close()``: kombu's connection pools are process-wide and keyed by
        URL, and force-closing them would hand the next hub in this process a dead
        connection. Broker connections go back to that pool after each use; the
        backend's Redis connections belong to this app alone and are closed here.
        """
        with contextlib.suppress(Exception):  # best effort: the job's outcome stands
            self.app.backend.client.connection_pool.disconnect()


@dataclass
class WaveRun:
    """A published wave: its chunks' task ids, its callback's, and what has come back."""

    ids: dict[str, int]
    callback_id: str
    tally: WaveTally
    collected: bool = False
    #: The backend lost the chord's state (or the wave was resumed in part): its
    #: callback will not come.
    callback_lost: bool = False
    #: Of a resumed job: the wave's results found counted before it was sent.
    counted_before: list[ChunkResult] = field(default_factory=list)

    def outstanding(self) -> list[str]:
        """Task ids whose results nobody has collected yet."""
        if self.collected:
            return []
        return [t for t, i in self.ids.items() if not self.tally.has(i)] + [self.callback_id]


class Watchdog:
    """Bounds a wait: the job's deadline, and workers that vanish while results stall."""

    def __init__(
        self,
        cluster: Cluster,
        deadline: float | None,
        counted: Callable[[], str],
        job_state: bool = True,
    ) -> None:
        self.cluster = cluster
        self.deadline = deadline
        self.counted = counted
        self.grace = cluster.settings.worker_grace
        self.job_state = job_state
        self.last_progress = self.last_seen_worker = self.last_ping = time.monotonic()
        self.last_state_check = time.monotonic()

    def progressed(self) -> None:
        self.last_progress = self.last_seen_worker = time.monotonic()

    def check_deadline(self) -> None:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise JobTimeout(f"the job's deadline passed with {self.counted()} chunks counted")

    def check(self) -> None:
        now = time.monotonic()
        self.check_deadline()
        if self.job_state and now - self.last_state_check >= STATE_CHECK_SECONDS:
            self.last_state_check = now
            self.cluster.check_job_state()
        if now - self.last_progress < STALL_SECONDS or now - self.last_ping < STALL_SECONDS:
            return
        self.last_ping = now
        if self.cluster.live_workers():
            self.last_seen_worker = now
        elif now - self.last_seen_worker >= self.grace:
            raise JobTimeout(
                f"no worker has answered for {now - self.last_seen_worker:.0f}s: the cluster's "
                f"workers are gone ({self.counted()} chunks counted)"
            )


def describe_failure(meta: dict[str, Any]) -> str:
    """``ExcType: message`` from a failed task's JSON result."""
    result = meta.get("result")
    if isinstance(result, dict) and "exc_type" in result:
        message = result.get("exc_message")
        if isinstance(message, (list, tuple)):
            message = " ".join(str(m) for m in message)
        return f"{result['exc_type']}: {message}"
    return f"{meta.get('status')}: {result!r}"


def _chunk_result(index: int, meta: dict[str, Any]) -> ChunkResult:
    if meta["status"] != states.SUCCESS:
        raise JobFailed(f"chunk {index} failed: {describe_failure(meta)}")
    return ChunkResult.from_message(meta["result"])


def _chunk_message(chunk: Chunk) -> list[int]:
    return [chunk.index, chunk.start, chunk.stop]


def concurrency(stats: dict[str, Any]) -> int:
    try:
        return int(stats["pool"]["max-concurrency"])
    except (KeyError, TypeError, ValueError):
        return 1


def _source(host: str, measured: Mapping[str, float]) -> str:
    # A host whose chunks all went elsewhere during calibration gets the typical rate.
    return "calibrated" if host in measured else "assumed"


def _vhost(url: str | None) -> str:
    return urlsplit(url or "").path.lstrip("/") or "/"


def where_of(url: str | None) -> str:
    """``host:port`` of a URL: what a user needs to know, with no credentials."""
    parts = urlsplit(url or "")
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.hostname}:{port}" if port else str(parts.hostname)
