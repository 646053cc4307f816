"""Wake-ups for the hub's polls: the result backend announces every state it stores.

Celery's Redis backend publishes each task state it stores on a channel named by the
task's key (it is how ``AsyncResult.get`` waits). The hub subscribes to its chunks'
channels before it publishes them, and its poll loop waits on those messages rather
than a timed pause, so a result is read within a round trip of landing instead of up
to a poll interval later: a job's last chunk, which the whole job waits on, most of all.

The messages only wake the loop. What is counted is still read with one MGET of the
keys, so a lost, late or repeated message changes nothing but timing; a message that
comes before its subscription is caught by the next poll; and where the subscription
fails (the backend restarting) the loop falls back to timed polls. Only a finished
state wakes it: a chunk's start (which the backups' books want, not urgently) waits for
the loop's next timed poll, so a job's polls are about one per result, each one's MGET
and decoding being CPU taken from the chunks on a hub that is also a worker.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable
from typing import Any

from celery import states

from mcpi.cluster.client import REDIS_ERRORS


class Listeners:
    """Subscriptions to ``backend``'s announcements, kept between jobs.

    Closing a redis-py ``PubSub`` disconnects its connection and hands it back to the
    pool dead, so the next command on it pays a new connection and TLS handshake: about
    a millisecond of the hub's CPU a job, which a sweep of small jobs feels. A job's
    subscription is instead unsubscribed from everything and kept for the next job (a
    sweep's jobs run in threads: each takes its own).
    """

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self._idle: list[Any] = []
        self._lock = threading.Lock()

    def take(self) -> Any | None:
        """A subscription kept from an earlier job, with no channels (or none that
        matter: see :meth:`give_back`), or None. Its connection may have died since
        (the backend restarted), which its first command finds out."""
        with self._lock:
            return self._idle.pop() if self._idle else None

    def fresh(self) -> Any:
        """A subscription on a new connection."""
        return self.backend.client.pubsub()

    def give_back(self, pubsub: Any) -> None:
        """Keep ``pubsub`` for the next job. Its last channels' confirmations, and any
        message still on its way, are read by that job's waits, and ignored (or cost
        one poll)."""
        try:
            pubsub.unsubscribe()
        except REDIS_ERRORS:
            _close(pubsub)
            return
        with self._lock:
            self._idle.append(pubsub)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for pubsub in idle:
            _close(pubsub)


def _close(pubsub: Any) -> None:
    with contextlib.suppress(*REDIS_ERRORS):
        pubsub.close()


class Arrivals:
    """The channels of the results that the backend of ``listeners`` (Celery's Redis
    backend) will announce, listened to with a subscription taken from ``listeners``."""

    def __init__(self, listeners: Listeners) -> None:
        self.listeners = listeners
        self.backend = listeners.backend
        self._pubsub: Any = None
        self._expected: set[str] = set()
        #: A failed subscription was replaced by a fresh one (once a job, at most).
        self._renewed = False
        #: The subscriptions failed: this job polls on a timer to its end.
        self.failed = False

    def expect(self, task_ids: Iterable[str]) -> None:
        """Listen for the results of ``task_ids`` (those not listened for already):
        called before they are published."""
        new = [t for t in task_ids if t not in self._expected]
        if not new or self.failed:
            return
        self._expected.update(new)
        fresh = False
        try:
            if self._pubsub is None:
                self._pubsub = self.listeners.take()
                if self._pubsub is None:
                    fresh = True
                    self._pubsub = self.listeners.fresh()
            self._pubsub.subscribe(*self._channels(new))
        except REDIS_ERRORS:
            # A new connection that fails at once is no dead one to replace: the
            # backend is away now, and a second try would only wait for it again.
            self._fall_back(renew=not fresh)

    def forget(self, task_ids: Iterable[str]) -> None:
        """Stop listening for ``task_ids``: their results are in."""
        done = [t for t in task_ids if t in self._expected]
        if not done or self._pubsub is None:
            return
        self._expected.difference_update(done)
        try:
            self._pubsub.unsubscribe(*self._channels(done))
        except REDIS_ERRORS:
            self._fall_back()

    def _channels(self, task_ids: Iterable[str]) -> list[str]:
        """The channels the backend announces ``task_ids``' states on."""
        return [self.backend.get_key_for_task(t) for t in task_ids]

    @property
    def live(self) -> bool:
        """Results are announced: a wait ends when one is, and needs no short timer."""
        return self._pubsub is not None and self._pubsub.subscribed

    def wait(self, seconds: float) -> None:
        """Until a result is announced, or ``seconds`` pass."""
        pubsub = self._pubsub
        if pubsub is None or not pubsub.subscribed:
            time.sleep(seconds)
            return
        until = time.monotonic() + seconds
        try:
            while (left := until - time.monotonic()) > 0:
                message = pubsub.get_message(timeout=left)
                if message is not None and self._finished(message):
                    # Take what else is waiting now: one poll reads them all.
                    while pubsub.get_message(timeout=0) is not None:
                        pass
                    return
        except REDIS_ERRORS:
            self._fall_back()

    def _finished(self, message: dict[str, Any]) -> bool:
        """The message announces a finished state (or cannot be read: then look)."""
        if message["type"] != "message":
            return False
        try:
            status = self.backend.decode_result(message["data"])["status"]
        except Exception:  # noqa: BLE001  (only a wake-up: the poll reads the real state)
            return True
        return status in states.READY_STATES

    def _fall_back(self, renew: bool = True) -> None:
        """The subscription failed: a fresh one to the same channels, once a job, or
        else timed polls for the rest of the job.

        The backend restarted. Between two jobs, that killed the connection of the
        subscription kept for the next, and the first read on it finds out; mid-job, the
        restarted backend may well be back. What was announced meanwhile is read by
        the next poll."""
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            _close(pubsub)
        if renew and not self._renewed and self._expected:
            self._renewed = True
            fresh = self.listeners.fresh()
            try:
                fresh.subscribe(*self._channels(self._expected))
                self._pubsub = fresh
                return
            except REDIS_ERRORS:
                _close(fresh)
        self._expected.clear()
        self.failed = True

    def close(self) -> None:
        """The job is over: its subscription goes back to ``listeners``."""
        pubsub, self._pubsub = self._pubsub, None
        self._expected.clear()
        if pubsub is not None:
            self.listeners.give_back(pubsub)
