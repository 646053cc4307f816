"""The cluster as the dashboard shows it: ``mcpi-hub status``, asked every few seconds.

Asking the broker, the backend and every worker costs them a broadcast and a few round
trips, so it is done at most every :data:`STATUS_SECONDS` whoever watches (a 1 Hz probe
of every worker is what made Dask's liveness checks expensive, dask#8493). A host that
answered before and no longer does is shown as gone, with how long since it was last
seen, until the dashboard restarts.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from typing import Any

from mcpi.ops.snapshot import status_as_json
from mcpi.ops.status import gather
from mcpi.settings import Settings

#: Seconds between two looks at the cluster.
STATUS_SECONDS = 5.0


class ClusterWatch:
    """The status of the cluster ``settings`` name (None where none is configured)."""

    def __init__(
        self,
        settings: Settings,
        every: float = STATUS_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.every = every
        self.clock = clock
        self.asked: float | None = None
        self.latest: dict[str, Any] | None = None
        #: Every host that ever answered: when it last did (this clock).
        self.seen: dict[str, float] = {}

    def look(self) -> dict[str, Any] | None:
        """The newest status, asked again if it is older than ``every`` seconds."""
        if not self.settings.cluster_configured:
            return None
        now = self.clock()
        if self.asked is None or now - self.asked >= self.every:
            self.asked = now
            self.latest = self._ask(now)
        assert self.latest is not None
        return self.latest | {"age": now - self.asked, "hosts": self._hosts(now)}

    def _ask(self, now: float) -> dict[str, Any]:
        status = status_as_json(gather(self.settings))
        for worker in status["workers"]:
            self.seen[worker["host"]] = now
        status["asked"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        return status

    def _hosts(self, now: float) -> list[dict[str, Any]]:
        """Each host seen: up (answering now) or gone, and since when it was last seen."""
        assert self.latest is not None and self.asked is not None
        answering = {w["host"] for w in self.latest["workers"]}
        return [
            {"host": host, "up": host in answering, "last_seen": now - last}
            for host, last in sorted(self.seen.items())
        ]
