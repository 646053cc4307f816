"""Bounding a wait: the job's deadline, and workers that vanish while results stall.

The watchdog knows nothing of Celery: it is given what to ask (how many workers answer
a ping, a check of the backend's job state) and what to say (the chunks counted so
far) as callables, and is ticked between polls of the result backend.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from mcpi.errors import JobTimeout

#: With no new result for this long, the hub checks that some worker is still alive.
STALL_SECONDS = 10.0
#: Seconds between checks that the result backend still holds the job's state.
STATE_CHECK_SECONDS = 2.0


class Watchdog:
    """Raises :class:`JobTimeout` past ``deadline``, or when no worker answers for ``grace``."""

    def __init__(
        self,
        deadline: float | None,
        counted: Callable[[], str],
        live_workers: Callable[[], int],
        grace: float,
        check_state: Callable[[], None] | None = None,
    ) -> None:
        self.deadline = deadline
        self.counted = counted
        self.live_workers = live_workers
        self.grace = grace
        self.check_state = check_state
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
        if self.check_state is not None and now - self.last_state_check >= STATE_CHECK_SECONDS:
            self.last_state_check = now
            self.check_state()
        if now - self.last_progress < STALL_SECONDS or now - self.last_ping < STALL_SECONDS:
            return
        self.last_ping = now
        if self.live_workers():
            self.last_seen_worker = now
        elif now - self.last_seen_worker >= self.grace:
            raise JobTimeout(
                f"no worker has answered for {now - self.last_seen_worker:.0f}s: the cluster's "
                f"workers are gone ({self.counted()} chunks counted)"
            )
