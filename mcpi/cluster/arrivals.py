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
import time
from collections.abc import Iterable
from typing import Any

from celery import states

from mcpi.cluster.client import REDIS_ERRORS


class Arrivals:
    """The channels of the results ``backend`` (Celery's Redis backend) will announce."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self._pubsub: Any = None
        self._expected: set[str] = set()
        #: The subscription failed once: this job polls on a timer to its end.
        self.failed = False

    def expect(self, task_ids: Iterable[str]) -> None:
        """Listen for the results of ``task_ids`` (those not listened for already):
        called before they are published."""
        new = [t for t in task_ids if t not in self._expected]
        if not new or self.failed:
            return
        try:
            if self._pubsub is None:
                self._pubsub = self.backend.client.pubsub()
            self._pubsub.subscribe(*(self.backend.get_key_for_task(t) for t in new))
            self._expected.update(new)
        except REDIS_ERRORS:
            self._fall_back()

    def forget(self, task_ids: Iterable[str]) -> None:
        """Stop listening for ``task_ids``: their results are in."""
        done = [t for t in task_ids if t in self._expected]
        if not done or self._pubsub is None:
            return
        self._expected.difference_update(done)
        try:
            self._pubsub.unsubscribe(*(self.backend.get_key_for_task(t) for t in done))
        except REDIS_ERRORS:
            self._fall_back()

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

    def _fall_back(self) -> None:
        """The subscription failed: timed polls for the rest of the job."""
        self.close()
        self.failed = True

    def close(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(*REDIS_ERRORS):
                pubsub.close()
