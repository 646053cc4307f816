"""What ``mcpi-hub status`` shows: a snapshot of the cluster, and the version-skew rule.

Pure data, filled in by :func:`mcpi.ops.status.gather`, rendered by the CLI (and as JSON,
:func:`status_as_json`, by ``status --json`` and the dashboard).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

#: A server certificate this close to its end is warned about.
CERTIFICATE_WARNING_DAYS = 30


@dataclass(frozen=True)
class Service:
    name: str  # "broker" or "backend"
    where: str
    reachable: bool
    product: str = ""
    version: str = ""
    error: str = ""
    #: The TLS version of the hub's connection ("TLSv1.3"), "" for plain TCP.
    tls: str = ""
    #: When the server's certificate expires (UTC), where TLS told.
    certificate_expires: datetime | None = None

    def certificate_warning(self, now: datetime) -> str | None:
        """A warning if the certificate ends within ``CERTIFICATE_WARNING_DAYS``."""
        if self.certificate_expires is None:
            return None
        days = (self.certificate_expires - now).total_seconds() / 86400
        if days > CERTIFICATE_WARNING_DAYS:
            return None
        when = self.certificate_expires.strftime("%Y-%m-%d %H:%M UTC")
        if days <= 0:
            return f"the {self.name}'s certificate expired on {when}: run the playbook to renew it"
        return (
            f"the {self.name}'s certificate expires in {days:.0f} day(s), on {when}: "
            "run the playbook to renew it"
        )


@dataclass(frozen=True)
class QueueDepth:
    name: str
    #: Messages waiting in the queue for a consumer.
    ready: int
    consumers: int


@dataclass(frozen=True)
class WorkerStatus:
    node: str
    host: str
    slots: int
    #: Chunks running, and delivered but waiting for a slot (both unacknowledged).
    running: int = 0
    prefetched: int = 0
    load: tuple[float, ...] = ()
    cpus: int = 0
    versions: dict[str, str] = field(default_factory=dict)
    #: The models installed on the worker, with their versions.
    models: dict[str, str] = field(default_factory=dict)
    #: The dart kernel the worker counts with, and why not the compiled one if it is not.
    kernel: str = ""
    kernel_note: str = ""
    #: The pass a model chunk's exact sums take there, and why not the compiled one.
    exact: str = ""
    exact_note: str = ""

    @property
    def mcpi(self) -> str:
        return self.versions.get("mcpi", "unknown")


@dataclass(frozen=True)
class ClusterStatus:
    hub_version: str
    broker: Service
    backend: Service
    queue: QueueDepth | None
    workers: list[WorkerStatus]

    @property
    def skew(self) -> list[str]:
        return version_skew(self.hub_version, self.workers)

    @property
    def unacknowledged(self) -> int:
        return sum(w.running + w.prefetched for w in self.workers)

    def by_host(self) -> dict[str, list[WorkerStatus]]:
        hosts: dict[str, list[WorkerStatus]] = {}
        for worker in sorted(self.workers, key=lambda w: (w.host, w.node)):
            hosts.setdefault(worker.host, []).append(worker)
        return hosts


def version_skew(hub_version: str, workers: Iterable[WorkerStatus]) -> list[str]:
    """One warning per mcpi version other than the hub's, naming the workers running it."""
    others: dict[str, list[str]] = {}
    for worker in workers:
        if worker.mcpi != hub_version:
            others.setdefault(worker.mcpi, []).append(worker.node)
    return [
        f"{len(nodes)} worker(s) run mcpi {version}, this hub {hub_version}: "
        + ", ".join(sorted(nodes))
        for version, nodes in sorted(others.items())
    ]


def status_as_json(status: ClusterStatus) -> dict[str, Any]:
    """``status`` as JSON: what ``status --json`` prints and the dashboard shows."""

    def service(s: Service) -> dict[str, Any]:
        return {
            "where": s.where,
            "reachable": s.reachable,
            "product": s.product,
            "version": s.version,
            "error": s.error or None,
            "tls": s.tls or None,
            "certificate_expires": (
                s.certificate_expires.isoformat() if s.certificate_expires else None
            ),
        }

    q = status.queue
    return {
        "hub_version": status.hub_version,
        "broker": service(status.broker),
        "backend": service(status.backend),
        "queue": None
        if q is None
        else {
            "name": q.name,
            "ready": q.ready,
            "consumers": q.consumers,
            "unacknowledged": status.unacknowledged,
        },
        "workers": [
            {
                "node": w.node,
                "host": w.host,
                "slots": w.slots,
                "running": w.running,
                "prefetched": w.prefetched,
                "load": list(w.load),
                "cpus": w.cpus,
                "versions": w.versions,
                "models": w.models,
                "kernel": w.kernel,
                "kernel_note": w.kernel_note or None,
                "exact_sums": w.exact,
                "exact_sums_note": w.exact_note or None,
            }
            for w in status.workers
        ],
        "skew": status.skew,
        "warnings": [
            w
            for s in (status.broker, status.backend)
            if (w := s.certificate_warning(datetime.now(UTC)))
        ],
    }
