"""Backup copies and a wave's tally, driven through random interleavings (Hypothesis stateful).

Copies start, arrive (twice, late, or after a backup won), fail, are withdrawn or lost,
the clock moves and the queue drains or fills, in any order; :class:`Backups` hears of
it all through its events and sends copies through a fake cluster. After every step,
and at the end when every copy still alive has come back, each chunk counts exactly once
and the wave's sums are the serial run's, bit for bit. No broker, no backend: the books
alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from kombu.exceptions import OperationalError

from mcpi.cluster.backups import Backups, backup_task_id
from mcpi.cluster.chunks import chunk_task_id
from mcpi.core.chunk import compute_chunk
from mcpi.core.job import Job
from mcpi.core.messages import encode_result
from mcpi.core.plan import Chunk, Plan
from mcpi.core.tally import WaveTally, add_sums
from mcpi.errors import JobFailed
from mcpi.models.builtin import pi

PLAN = Plan(8 * 1000, 1000)
JOB = Job("machine", 7, PLAN, pi.call({}))
TRUE = {c.index: compute_chunk(pi, JOB, c) for c in PLAN.chunks()}
MOST_COPIES = 3  # the original and at most two backups at once (mcpi.core.stragglers)


class FakeCluster:
    """Copies sent and withdrawn, and a queue that drains when the test says so."""

    def __init__(self) -> None:
        self.sent: dict[str, int] = {}
        self.revoked: set[str] = set()
        self.drained = False
        #: The broker is going away: a send fails, and nothing is published.
        self.failing = False

    def send(self, ids: Mapping[str, int]) -> None:
        assert not set(ids) & set(self.sent), "a backup task id was used twice"
        if self.failing:
            raise OperationalError("[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred")
        self.sent.update(ids)

    def revoke(self, ids: list[str]) -> None:
        self.revoked.update(ids)

    def queue_drained(self) -> bool:
        return self.drained


def success(index: int, seconds: float, host: str) -> dict[str, Any]:
    result = TRUE[index]
    telemetry = replace(result.telemetry, seconds=seconds, host=host)
    return {"status": "SUCCESS", "result": encode_result(replace(result, telemetry=telemetry))}


class BackupsAndTally(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.cluster = FakeCluster()
        self.backups = Backups(self.cluster, JOB, slots=3)
        self.tally = WaveTally(PLAN, range(PLAN.chunk_count), JOB.width)
        self.now = 1000.0
        self.backups.last_check = self.now
        self.originals = {chunk_task_id(JOB.id, i): i for i in range(PLAN.chunk_count)}
        self.lost: set[str] = set()
        #: Copies that failed or were withdrawn: out no more.
        self.failed: set[str] = set()
        self.delivered: set[str] = set()

    # -- the world ------------------------------------------------------------------------

    def copies(self) -> dict[str, int]:
        return self.originals | self.cluster.sent

    def missing(self) -> dict[str, int]:
        return {t: i for t, i in self.originals.items() if not self.tally.has(i)}

    def deliver(self, task_id: str, meta: dict[str, Any]) -> None:
        index = self.copies()[task_id]
        result = self.backups.result(task_id, index, meta, self.tally)
        if result is not None:
            self.tally.add(result)
        self.delivered.add(task_id)

    def alive(self) -> list[str]:
        return sorted(t for t in self.copies() if t not in self.lost)

    def polled(self) -> list[str]:
        """The copies whose results the hub's next poll reads: those it watches."""
        return sorted(set(self.backups.watched(self.missing())) - self.lost)

    # -- rules --------------------------------------------------------------------------------

    @rule(data=st.data(), worker=st.integers(0, 3))
    @precondition(lambda self: bool(self.alive()))
    def a_copy_starts(self, data: st.DataObject, worker: int) -> None:
        task_id = data.draw(st.sampled_from(self.alive()))
        self.backups.started(task_id, {"hostname": f"w{worker}@h{worker % 2}"}, self.now)

    @rule(seconds=st.floats(0.01, 5.0))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds

    @rule(drained=st.booleans())
    def the_queue_drains_or_fills(self, drained: bool) -> None:
        self.cluster.drained = drained

    @rule(failing=st.booleans())
    def the_broker_goes_away_or_comes_back(self, failing: bool) -> None:
        self.cluster.failing = failing

    @rule()
    def the_hub_ticks(self) -> None:
        self.backups.tick(self.missing(), self.now)

    @rule(data=st.data(), seconds=st.floats(0.001, 2.0), twice=st.booleans())
    @precondition(lambda self: bool(self.polled()))
    def a_copy_arrives(self, data: st.DataObject, seconds: float, twice: bool) -> None:
        task_id = data.draw(st.sampled_from(self.polled()))
        meta = success(self.copies()[task_id], seconds, f"h{len(task_id) % 2}")
        self.deliver(task_id, meta)
        if twice and task_id in self.polled():  # read again by the next poll
            self.deliver(task_id, meta)

    @rule(data=st.data(), status=st.sampled_from(["FAILURE", "REVOKED"]))
    def a_backup_fails_or_is_withdrawn(self, data: st.DataObject, status: str) -> None:
        # An original's failure fails the job (as without backups): only copies here.
        copies = sorted(set(self.polled()) - set(self.originals))
        if copies:
            task_id = data.draw(st.sampled_from(copies))
            meta = {"status": status, "result": {"exc_type": "Lost", "exc_message": "gone"}}
            self.deliver(task_id, meta)
            self.lost.add(task_id)  # it never comes back
            self.failed.add(task_id)

    @rule(data=st.data())
    @precondition(lambda self: bool(self.alive()))
    def a_copy_is_lost(self, data: st.DataObject) -> None:
        self.lost.add(data.draw(st.sampled_from(self.alive())))

    # -- what must always hold ------------------------------------------------------------

    @invariant()
    def every_counted_chunk_counts_once_with_its_true_sums(self) -> None:
        counted = [i for i in range(PLAN.chunk_count) if self.tally.has(i)]
        assert self.tally.chunks == len(counted)
        expected: tuple[int, ...] = ()
        for i in counted:
            expected = add_sums(expected, TRUE[i].sums)
        assert self.tally.sums == expected
        assert self.tally.darts == sum(PLAN.chunk(i).darts for i in counted)

    @invariant()
    def backups_stay_within_their_bounds(self) -> None:
        assert self.backups.in_flight() <= self.backups.slots
        per_chunk: dict[int, int] = {}
        for task_id, index in self.copies().items():
            if task_id not in self.failed:  # out, or came back
                per_chunk[index] = per_chunk.get(index, 0) + 1
        assert max(per_chunk.values()) <= MOST_COPIES
        for task_id, index in self.cluster.sent.items():
            assert task_id.startswith(chunk_task_id(JOB.id, index) + "-b")

    @invariant()
    def chunks_running_are_never_more_than_chunks_missing(self) -> None:
        missing = self.missing()
        assert self.backups.running_chunks(missing) <= len(set(missing.values()))

    def teardown(self) -> None:
        # Every copy still alive comes back; a chunk whose every copy was lost is
        # delivered again by the broker (its original, unacknowledged, requeued).
        while self.polled():
            for task_id in self.polled():
                self.deliver(task_id, success(self.copies()[task_id], 0.5, "h0"))
        for task_id, index in self.missing().items():
            self.deliver(task_id, success(index, 0.5, "h1"))
        assert self.tally.complete
        # The last look: copies still out for counted chunks come back and agree.
        for task_id, index in self.backups.late_copies().items():
            if task_id not in self.lost:
                self.deliver(task_id, success(index, 0.5, "h1"))
        serial = compute_chunk(pi, JOB, Chunk(0, 0, PLAN.darts))
        assert self.tally.sums == serial.sums
        note = self.backups.close()
        assert (note is None) == (not self.cluster.sent)
        assert self.backups.books.sent == len(self.cluster.sent)
        # Every copy still out at the end was withdrawn.
        assert set(self.backups.late) <= self.cluster.revoked


BackupsAndTally.TestCase.settings = settings(
    max_examples=300, stateful_step_count=40, deadline=None
)
test_backups_and_the_tally_count_every_chunk_exactly_once = BackupsAndTally.TestCase


def test_a_late_copy_that_disagrees_fails_the_job_naming_both() -> None:
    cluster = FakeCluster()
    backups = Backups(cluster, JOB, slots=2)
    backups.last_check = 0.0  # the test's clock
    tally = WaveTally(PLAN, range(PLAN.chunk_count), JOB.width)
    original = chunk_task_id(JOB.id, 3)
    for i in range(PLAN.chunk_count):  # every other chunk counted: a typical speed known
        if i != 3:
            tally.add(backups.result(chunk_task_id(JOB.id, i), i, success(i, 0.1, "h0"), tally))  # type: ignore[arg-type]
    backups.started(original, {"hostname": "slow@h1"}, 0.0)
    cluster.drained = True
    backups.tick({original: 3}, 100.0)
    (copy,) = cluster.sent
    assert copy == backup_task_id(JOB.id, 3, 1)
    tally.add(backups.result(copy, 3, success(3, 0.1, "h0"), tally))  # type: ignore[arg-type]
    forged = success(3, 0.1, "h1")
    forged["result"]["chunk"]["sums"] = ["0", "0"]
    with pytest.raises(JobFailed, match=r"chunk 3 gave two different results.*slow@h1"):
        backups.result(original, 3, forged, tally)


def test_a_backup_the_broker_does_not_take_is_not_out_and_the_job_goes_on() -> None:
    """A broker going away between the look at its queue and the send (RabbitMQ shutting
    down, in the chaos soak) fails no job: the copy is not out, and a later beat sends it."""
    cluster = FakeCluster()
    cluster.drained, cluster.failing = True, True
    backups = Backups(cluster, JOB, slots=3)
    tally = WaveTally(PLAN, range(PLAN.chunk_count), JOB.width)
    now = backups.last_check = 1000.0
    for index in range(PLAN.chunk_count - 1):
        task_id = chunk_task_id(JOB.id, index)
        backups.started(task_id, {"hostname": "w0@h0"}, now)
        result = backups.result(task_id, index, success(index, 0.5, "h0"), tally)
        assert result is not None and tally.add(result)
    last = PLAN.chunk_count - 1
    missing = {chunk_task_id(JOB.id, last): last}
    backups.started(chunk_task_id(JOB.id, last), {"hostname": "w1@h1"}, now)
    backups.tick(missing, now + 60)
    assert backups.books.sent == 0 and not cluster.sent
    assert set(backups.watched(missing)) == set(missing) and backups.in_flight() == 0
    cluster.failing = False
    backups.tick(missing, now + 120)
    assert backups.books.sent == 1 and list(cluster.sent.values()) == [last]


def test_a_chunk_whose_original_and_backup_both_run_is_one_chunk_running() -> None:
    """What the live view shows as computing: chunks, not copies."""
    cluster = FakeCluster()
    cluster.drained = True
    backups = Backups(cluster, JOB, slots=3)
    tally = WaveTally(PLAN, range(PLAN.chunk_count), JOB.width)
    now = backups.last_check = 1000.0
    for index in range(PLAN.chunk_count - 2):
        task_id = chunk_task_id(JOB.id, index)
        result = backups.result(task_id, index, success(index, 0.5, "h0"), tally)
        assert result is not None and tally.add(result)
    missing = {chunk_task_id(JOB.id, i): i for i in range(PLAN.chunk_count - 2, PLAN.chunk_count)}
    for task_id in missing:
        backups.started(task_id, {"hostname": "w1@h1"}, now)
    backups.tick(missing, now + 60)
    assert len(cluster.sent) == 2
    for copy in cluster.sent:
        backups.started(copy, {"hostname": "w0@h0"}, now + 61)
    assert len(backups.running) == 4
    assert backups.running_chunks(missing) == 2
