"""The rate book: worker rates the hub measured or learnt, kept between runs.

Automatic chunk sizing needs each host's per-slot kernel rate and the per-task
overhead of the transport. Measuring them costs a short calibration (well under a
second); the hub keeps what it measured, and what it learns from every finished job's
telemetry, in ``<cache_dir>/rates.json``, per cluster (broker host, port and vhost: no
credentials), so that later jobs start without calibrating.

An entry is used only while it is fresh (:data:`MAX_AGE`), for the same number of
slots and the same mcpi version; a host whose entry is missing or stale makes the hub
calibrate again. The file is a cache: unreadable, malformed or unwritable, it is
ignored, never an error.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcpi.core.stats import HostWork
from mcpi.core.tuning import Capacity, HostRate
from mcpi.hub.records import write_json_atomically

#: Measured rates older than this are measured again (hardware and load change).
MAX_AGE = 7 * 24 * 3600.0

#: A host's rate is learnt from a job only if it counted for at least this long.
MIN_LEARNING_SECONDS = 1.0


@dataclass(frozen=True)
class KnownOverhead:
    """A task overhead the book holds (seconds a slot spends per task), and when it was measured."""

    seconds: float
    at: float


class RateBook:
    """Rates per cluster and host, in a JSON file under the hub's cache directory."""

    def __init__(self, path: Path | None, cluster: str, version: str) -> None:
        self.path = path
        self.cluster = cluster
        self.version = version

    def capacity(self, slots: Mapping[str, int], now: float | None = None) -> Capacity | None:
        """The capacity of hosts with ``slots``, if every one of them has a fresh rate."""
        now = time.time() if now is None else now
        entry = self._load().get(self.cluster)
        if not isinstance(entry, dict) or not slots:
            return None
        overhead = entry.get("task_overhead")
        hosts = entry.get("hosts")
        if not isinstance(overhead, (int, float)) or not isinstance(hosts, dict):
            return None
        if not _fresh(entry.get("overhead_at"), now):
            return None
        rates = []
        for host, host_slots in slots.items():
            known = hosts.get(host)
            if not (
                isinstance(known, dict)
                and known.get("slots") == host_slots
                and known.get("version") == self.version
                and _fresh(known.get("at"), now)
                and isinstance(known.get("rate"), (int, float))
            ):
                return None
            try:
                rates.append(HostRate(host, host_slots, float(known["rate"]), source="learnt"))
            except ValueError:
                return None
        try:
            return Capacity.of(rates, float(overhead))
        except ValueError:
            return None

    def known_overhead(self, transport: str, now: float | None = None) -> KnownOverhead | None:
        """The newest fresh task overhead measured on ``transport`` (the executor's
        ``where``) for any model: it is the transport's cost per task, whatever the
        task computes, so a model new to a cluster need not measure it again."""
        now = time.time() if now is None else now
        found: KnownOverhead | None = None
        for key, entry in self._load().items():
            if not (isinstance(key, str) and key.startswith(transport + " ")):
                continue
            if not isinstance(entry, dict):
                continue
            overhead, at = entry.get("task_overhead"), entry.get("overhead_at")
            if not (isinstance(overhead, (int, float)) and isinstance(at, (int, float))):
                continue
            if not (overhead >= 0 and _fresh(at, now)):
                continue
            if found is None or at > found.at:
                found = KnownOverhead(float(overhead), float(at))
        return found

    def record(
        self,
        hosts: Iterable[HostRate],
        task_overhead: float | None,
        now: float | None = None,
        overhead_at: float | None = None,
    ) -> None:
        """Remember ``hosts``' rates (and the task overhead, if measured: ``overhead_at``
        is when, if not now -- an overhead known from another model keeps its age)."""
        now = time.time() if now is None else now
        book = self._load()
        entry = book.setdefault(self.cluster, {})
        if not isinstance(entry, dict):
            entry = book[self.cluster] = {}
        known = entry.setdefault("hosts", {})
        if not isinstance(known, dict):
            known = entry["hosts"] = {}
        for host in hosts:
            known[host.host] = {
                "slots": host.slots,
                "rate": host.rate,
                "at": now,
                "version": self.version,
            }
        if task_overhead is not None:
            entry["task_overhead"] = task_overhead
            entry["overhead_at"] = now if overhead_at is None else overhead_at
        self._save(book)

    def learn(self, slots: Mapping[str, int], work: Mapping[str, HostWork]) -> None:
        """Remember the per-slot rates a finished stage's telemetry shows (hosts with ``slots``)."""
        learnt = [
            HostRate(host, slots[host], w.darts / w.busy_seconds, source="learnt")
            for host, w in work.items()
            if host in slots and w.busy_seconds >= MIN_LEARNING_SECONDS
        ]
        if learnt:
            self.record(learnt, task_overhead=None)

    def _load(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save(self, book: dict[str, Any]) -> None:
        # Best effort, and atomic: a concurrent hub reads the old or the new file.
        if self.path is not None:
            # Sorted: a person comparing two books (or two runs') reads them side by side.
            write_json_atomically(self.path, book, indent=1, sort_keys=True)


def _fresh(at: Any, now: float) -> bool:
    return isinstance(at, (int, float)) and 0 <= now - at <= MAX_AGE
