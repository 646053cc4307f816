"""Reading a job's results from the result backend: one polling loop, woken by announcements.

Every wait of a job on the cluster (its chunks' results, their backup copies', a wave's
chord callback) is :meth:`Poller.until`: one MGET of the task ids the caller watches,
the ready results handed back, then the caller's beat (the watchdog, the backups'
tick) and a wait that the backend's announcement of a result ends at once
(:mod:`mcpi.cluster.arrivals`), or a short timer where announcements failed.

A copy seen in the ``STARTED`` state is told to ``started``: when and where it runs is
what says it is overdue (:mod:`mcpi.cluster.backups`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from celery import states

from mcpi.cluster.arrivals import Arrivals

#: Polls of the result backend (one MGET of the outstanding ids each) follow a result
#: after FIRST_POLL_SECONDS and back off, doubling, to POLL_SECONDS while none comes; a
#: result announced by the backend (:mod:`mcpi.cluster.arrivals`) ends the wait at once.
#: So a chunk is seen within a round trip of landing, and a long wave costs Redis about
#: ten polls a second.
FIRST_POLL_SECONDS = 0.002
POLL_SECONDS = 0.1

#: A ready result: its task id, its chunk's index, and the backend's stored state.
Ready = tuple[str, int, dict[str, Any]]


class Poller:
    """Results of the tasks of one job run, from ``backend`` (Celery's Redis backend)."""

    def __init__(
        self,
        backend: Any,
        arrivals: Arrivals,
        started: Callable[[str, Any, float], None],
    ) -> None:
        self.backend = backend
        self.arrivals = arrivals
        self.started = started
        #: The stored STARTED state last read of each copy seen running, as stored:
        #: the same bytes at the next poll are the same state, told already and not
        #: decoded again (at a long wave's end each poll would decode every running
        #: copy's state, thousands of times a second at 1,600 slots).
        self._running: dict[str, bytes] = {}
        #: The longest result stored, in bytes (a wave's callback carries its wave's).
        self.largest = 0

    def until(
        self,
        watch: Callable[[], Mapping[str, int]],
        finished: Callable[[], bool],
        beat: Callable[[], None],
    ) -> Iterator[Ready]:
        """Ready results of the ids ``watch()`` names (asked anew each round), as they
        arrive, until ``finished()``; ``beat()`` runs between polls."""
        pause = self._pause()
        while not finished():
            ids = watch()
            self.arrivals.expect(ids)  # backup copies sent since the last poll
            arrived = self.poll(ids)
            yield from arrived
            if finished():
                return
            beat()
            self.arrivals.wait(pause)
            pause = self._pause(pause, bool(arrived))

    def poll(self, ids: Mapping[str, int]) -> list[Ready]:
        """One MGET of ``ids``: the ready results (task id, chunk, meta)."""
        if not ids:
            return []
        keys = list(ids)
        values = self.backend.client.mget([self.backend.get_key_for_task(t) for t in keys])
        now = time.monotonic()
        ready = []
        for task_id, value in zip(keys, values, strict=True):
            if value is None or self._running.get(task_id) == value:
                continue
            meta = self.backend.decode_result(value)
            if meta["status"] in states.READY_STATES:
                self._running.pop(task_id, None)
                self.largest = max(self.largest, len(value))
                ready.append((task_id, ids[task_id], meta))
            elif meta["status"] == states.STARTED:
                self._running[task_id] = value
                self.started(task_id, meta.get("result"), now)
        return ready

    def _pause(self, last: float | None = None, arrived: bool = True) -> float:
        """How long the next wait may last. Announced results end it early, so it is
        only the watchdog's and the backups' beat; polling on a timer (the announcements
        failed) it starts short after each arrival and doubles up to that beat."""
        if self.arrivals.live:
            return POLL_SECONDS
        return FIRST_POLL_SECONDS if arrived or last is None else min(POLL_SECONDS, 2 * last)
