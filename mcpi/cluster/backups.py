"""Backup copies of straggling chunks on the cluster: sent, raced, compared, withdrawn.

The policy (when a chunk is overdue, how many copies) is the pure core's
(:mod:`mcpi.core.stragglers`); this module keeps the books of one job run:

* when the hub first saw each copy running, and on which worker (workers store a
  ``STARTED`` state with their node name: ``task_track_started``);
* the backup copies sent, under task ids ``mcpi-<job>-<chunk>-b<n>`` carrying the very
  same chunk, so each copy's result has its own key and can be compared;
* once a chunk is counted, its other copies: withdrawn if they have not started,
  compared when they come back if they have. Two copies that disagree mean a worker
  that is non-deterministic or broken; the job fails naming both, rather than guess.

A backup sent is published as a plain task, outside the wave's chord: a wave that a
backup helped finish is checked by the hub's own tally, not by its chord callback
(which would wait on the stuck copy).

The job run tells :class:`Backups` what happens, as events in any order: a copy was
seen running (:meth:`~Backups.started`), a copy's result arrived
(:meth:`~Backups.result`, which says whether to count it), a beat of the wait
(:meth:`~Backups.tick`, which may send copies), and the end (:meth:`~Backups.close`).
It asks two things: which task ids to poll (:meth:`~Backups.watched`), and whether a
wave had backups (:meth:`~Backups.helped`). What it needs of the cluster is
:class:`Copies`: send copies, withdraw them, and whether the queue has drained.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Protocol

from celery import states

from mcpi.cluster.chunks import chunk_result, chunk_task_id, send_chunks
from mcpi.cluster.client import SERVICE_ERRORS, ClusterClient
from mcpi.core.chunk import ChunkResult
from mcpi.core.exact import SCALE_BITS
from mcpi.core.job import Job
from mcpi.core.stragglers import ChunkSpeed, Running, choose_backups
from mcpi.core.tally import WaveTally
from mcpi.errors import JobFailed

#: Seconds between looks for overdue chunks (and at the queue, when needed).
CHECK_SECONDS = 0.25


def backup_task_id(job_id: str, index: int, copy: int) -> str:
    return f"{chunk_task_id(job_id, index)}-b{copy}"


@dataclass
class Sighting:
    """A copy the hub has seen running: since when (hub clock), and where."""

    since: float
    worker: str


@dataclass
class Counted:
    """The copy of a chunk that counted: its sums and where they came from."""

    sums: tuple[int, ...]
    where: str
    by_backup: bool


@dataclass
class Books:
    """What the report says about backups."""

    sent: int = 0
    won: int = 0
    agreed: int = 0
    chunks: set[int] = field(default_factory=set)


class Copies(Protocol):
    """What backups need of the cluster."""

    def send(self, ids: Mapping[str, int]) -> None:
        """Publish a copy of chunk ``i`` under task id ``t``, for each ``t: i``."""
        ...

    def revoke(self, ids: list[str]) -> None:
        """Withdraw these copies (best effort: one already running comes back)."""
        ...

    def queue_drained(self) -> bool:
        """Whether no chunk is waiting in the queue (slots would idle)."""
        ...


class ClusterCopies:
    """:class:`Copies` of ``job``'s chunks on the cluster behind ``client``."""

    def __init__(self, client: ClusterClient, job: Job) -> None:
        self.client = client
        self.job = job

    def send(self, ids: Mapping[str, int]) -> None:
        send_chunks(self.client, self.job, ids)

    def revoke(self, ids: list[str]) -> None:
        self.client.revoke(ids)

    def queue_drained(self) -> bool:
        try:
            ready, _ = self.client.queue_state()
        except Exception:  # noqa: BLE001 - a broker away now is the job's watchdog's business
            return False
        return ready == 0


class Backups:
    """The backup copies of one job run on the cluster (see the module docstring)."""

    def __init__(self, copies: Copies, job: Job, slots: int) -> None:
        self.cluster = copies
        self.job = job
        #: Backups out at once, at most (0: none are sent).
        self.slots = slots
        self.speed = ChunkSpeed()
        self.books = Books()
        #: Copies seen running whose chunk is not counted yet, by task id.
        self.running: dict[str, Sighting] = {}
        #: Backup copies of chunks not counted yet: chunk -> [(task id, sent at)].
        self.copies: dict[int, list[tuple[str, float]]] = {}
        #: Copies still out for chunks already counted: task id -> chunk.
        self.late: dict[str, int] = {}
        #: The counted copy of every chunk that has (or had) other copies out.
        self.counted: dict[int, Counted] = {}
        #: Backup copies sent per chunk: each copy's number, never reused (a failed
        #: copy's task id holds its failure in the backend).
        self.numbered: dict[int, int] = {}
        self.drained_since: float | None = None
        self.last_check = time.monotonic()

    # -- what the job run asks --------------------------------------------------------

    def watched(self, missing: Mapping[str, int]) -> dict[str, int]:
        """Task ids to poll, and their chunks: ``missing`` originals, their backups, late copies."""
        ids = dict(missing)
        for index in set(missing.values()):
            for task_id, _ in self.copies.get(index, ()):
                ids[task_id] = index
        ids.update(self.late)
        return ids

    def running_chunks(self, missing: Mapping[str, int]) -> int:
        """How many of the ``missing`` chunks have a copy seen running: a chunk whose
        original and backup both run is one chunk computing, not two."""
        ids = self.watched(missing)
        uncounted = set(missing.values())
        return len({ids[t] for t in self.running if t in ids and ids[t] in uncounted})

    def late_copies(self) -> dict[str, int]:
        """Copies still out for chunks counted already: what a last look compares."""
        return dict(self.late)

    def helped(self, wave: range) -> bool:
        """Whether a backup was sent for a chunk of ``wave`` (its chord callback may not come)."""
        return any(i in wave for i in self.books.chunks)

    # -- events ---------------------------------------------------------------------------

    def started(self, task_id: str, state: Any, now: float) -> None:
        """A copy's ``STARTED`` state (``{"pid", "hostname"}``) was seen at ``now``."""
        if task_id not in self.running:
            worker = state.get("hostname") if isinstance(state, dict) else None
            self.running[task_id] = Sighting(now, str(worker or "a worker"))

    def result(
        self, task_id: str, index: int, meta: dict[str, Any], tally: WaveTally | None
    ) -> ChunkResult | None:
        """A copy of chunk ``index`` finished (its stored ``meta``): the result to count
        into the wave's ``tally``, or None.

        None for a late or backup copy that did not succeed (withdrawn, or failed: the
        other copies stand), and for a second copy of a chunk with backups, which is
        compared with the counted one instead: a contradiction fails the job. The
        original's failure fails the job, as without backups.
        """
        if self._dropped(task_id, meta):
            return None
        result = chunk_result(index, meta)
        if result.chunk.index != index:
            raise JobFailed(
                f"the result stored for chunk {index} is for chunk {result.chunk.index}"
            )
        first = self.counted.get(index)
        if first is not None:
            self._compare(task_id, index, result, first)
            return None
        # Where it ran, read before its sighting is dropped: the node name, if seen.
        where = self.where(task_id, result)
        self.running.pop(task_id, None)
        if tally is not None and tally.has(index):
            # A second copy of a chunk no backup was sent for: a redelivery, which the
            # wave's tally absorbs (or refuses, if it contradicts the first).
            return result
        self.speed.add(result.chunk.darts, result.telemetry.seconds, result.telemetry.host)
        backups = self.copies.pop(index, [])
        if backups:
            original = chunk_task_id(self.job.id, index)
            by_backup = task_id != original
            self.books.won += by_backup
            self.counted[index] = Counted(result.sums, where, by_backup)
            others = [t for t in (original, *(t for t, _ in backups)) if t != task_id]
            self.late.update(dict.fromkeys(others, index))
            # Withdrawn if not started yet; a copy already running comes back and is compared.
            self.cluster.revoke(others)
        return result

    def tick(self, missing: Mapping[str, int], now: float) -> None:
        """A beat of the wait for ``missing``: send backups of overdue chunks among them
        if the queue has drained."""
        if not self.slots or now - self.last_check < CHECK_SECONDS or not missing:
            return
        self.last_check = now
        if self.speed.expected_seconds(1) is None:
            return  # no chunk counted yet: nothing says what "overdue" is
        running = [self._running(task_id, index) for task_id, index in missing.items()]
        unseen = any(c.since is None for c in running)
        if not unseen and not self._choose(running, now):
            return
        # A look at the queue, only when it could matter: a chunk is overdue, or was
        # never seen running (held by a stopped process, or still queued).
        if not self.cluster.queue_drained():
            self.drained_since = None
            return
        if self.drained_since is None:
            self.drained_since = now
            running = [self._running(task_id, index) for task_id, index in missing.items()]
        self._send(self._choose(running, now), now)

    def close(self) -> str | None:
        """The run is over: every copy still out is withdrawn. The report's line about
        backups, if any were sent."""
        out = [t for copies in self.copies.values() for t, _ in copies] + list(self.late)
        if out:
            self.cluster.revoke(out)
        books = self.books
        if not books.sent:
            return None
        return (
            f"backups: {books.sent} copy(ies) of {len(books.chunks)} overdue chunk(s) sent "
            f"once the queue had drained; {books.won} finished first, {books.agreed} late "
            "copy(ies) came back and agreed, the rest were withdrawn"
        )

    # -- the books ------------------------------------------------------------------------

    def _dropped(self, task_id: str, meta: dict[str, Any]) -> bool:
        """True for a copy to ignore: a late or backup copy that did not succeed.

        A withdrawn copy stores ``REVOKED`` when a worker receives it; a backup that
        failed leaves its chunk to the other copies.
        """
        if meta.get("status") == states.SUCCESS:
            return False
        if self.late.pop(task_id, None) is not None:
            return True
        for index, copies in self.copies.items():
            if any(t == task_id for t, _ in copies):
                self.copies[index] = [c for c in copies if c[0] != task_id]
                return True
        return False

    def _compare(self, task_id: str, index: int, result: ChunkResult, first: Counted) -> None:
        self.late.pop(task_id, None)
        if first.sums != result.sums:
            samples, outputs = result.chunk.darts, self.job.model.outputs
            raise JobFailed(
                f"chunk {index} gave two different results, "
                f"{describe(first.sums, samples, outputs)} from {first.where} and "
                f"{describe(result.sums, samples, outputs)} from {self.where(task_id, result)}: "
                "a worker is non-deterministic or broken, so the job stops rather than guess"
            )
        self.books.agreed += 1

    def where(self, task_id: str, result: ChunkResult) -> str:
        seen = self.running.get(task_id)
        if seen is not None:
            return seen.worker
        return f"pid {result.telemetry.pid} on {result.telemetry.host}"

    def _choose(self, running: list[Running], now: float) -> list[int]:
        return choose_backups(
            running, self.speed, now, queue_drained=True, in_flight=self.in_flight(), cap=self.slots
        )

    def _running(self, task_id: str, index: int) -> Running:
        """The chunk ``index`` as the policy sees it: since when its newest copy runs."""
        backups = self.copies.get(index, [])
        newest, sent = backups[-1] if backups else (task_id, None)
        seen = self.running.get(newest)
        host = None
        if seen is not None:
            since: float | None = seen.since
            # A node is name@host; chunk results name the host, so rates are per host.
            host = seen.worker.partition("@")[2] or seen.worker
        elif sent is not None:
            since = sent  # a backup goes to a slot that idles: it starts at once
        else:
            since = self.drained_since  # never seen running: at least since the drain
        units = self.job.plan.chunk(index).darts
        return Running(index, units, 1 + len(backups), since, host)

    def in_flight(self) -> int:
        return sum(len(copies) for copies in self.copies.values())

    def _send(self, indices: list[int], now: float) -> None:
        if not indices:
            return
        ids = {}
        for index in indices:
            number = self.numbered[index] = self.numbered.get(index, 0) + 1
            ids[backup_task_id(self.job.id, index, number)] = index
        try:
            self.cluster.send(ids)
        except SERVICE_ERRORS:
            # A backup is an extra: a broker going away just then (found by the chaos
            # soak, RabbitMQ shutting down between the look at its queue and the
            # send) must not fail the job. The copies are not out (a publish fails on
            # its first message to a closed connection); a later beat may send others.
            return
        for task_id, index in ids.items():
            self.copies.setdefault(index, []).append((task_id, now))
            self.books.chunks.add(index)
        self.books.sent += len(ids)


def describe(sums: tuple[int, ...], samples: int, outputs: Sequence[str]) -> str:
    """A chunk's result in a few words: its outputs' means, to the last bit.

    >>> describe((12 << SCALE_BITS, 48 << SCALE_BITS), 4, ["pi"])
    'pi mean 3.0'
    """
    means = [float(Fraction(s1, samples << SCALE_BITS)) for s1 in sums[0::2]]
    return ", ".join(f"{name} mean {mean!r}" for name, mean in zip(outputs, means, strict=True))
