"""``mcpi-hub status``: the cluster at a glance, and version skew between hub and workers.

The broker is asked over AMQP itself (its server properties, and a passive declare of
the ``mcpi`` queue for the messages waiting and its consumers: no management plugin
needed), the backend with Redis ``INFO``, and the workers with one broadcast of their
``mcpi_info`` command (:mod:`mcpi.control`), which also counts the chunks each holds
unacknowledged (acks are late: running, or prefetched for a free slot).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import amqp.exceptions
import kombu.exceptions
import kombu.pools
import redis.exceptions

from mcpi import __version__
from mcpi.app import QUEUE
from mcpi.cluster import REPLY_SECONDS, Cluster, concurrency, where_of
from mcpi.control import INFO_COMMAND
from mcpi.errors import Unreachable
from mcpi.settings import Settings


@dataclass(frozen=True)
class Service:
    name: str  # "broker" or "backend"
    where: str
    reachable: bool
    product: str = ""
    version: str = ""
    error: str = ""


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


#: What a connection dropped between the checks and the questions raises.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    kombu.exceptions.OperationalError,
    amqp.exceptions.ConnectionError,
)


def gather(settings: Settings) -> ClusterStatus:
    """Ask the broker, the backend and the workers; never raises for an unreachable one.

    Status only reads, so a connection that drops while it asks (a pooled connection
    the broker closed, a broker restarting) is met by asking once more on fresh
    connections; if that fails too, the broker is shown unreachable, with the reason.
    """
    try:
        return _gather(settings)
    except CONNECTION_ERRORS:
        kombu.pools.reset()  # type: ignore[no-untyped-call]  # drop pooled, maybe dead, connections
    try:
        return _gather(settings)
    except CONNECTION_ERRORS as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        cluster = Cluster(settings)
        try:
            broker = Service("broker", cluster.where, False, error=f"connection lost: {reason}")
            return ClusterStatus(__version__, broker, _backend(cluster), None, [])
        finally:
            cluster.close()


def _gather(settings: Settings) -> ClusterStatus:
    cluster = Cluster(settings)
    try:
        broker, queue = _broker(cluster)
        backend = _backend(cluster)
        workers = _workers(cluster) if broker.reachable else []
        return ClusterStatus(__version__, broker, backend, queue, workers)
    finally:
        cluster.close()


def _broker(cluster: Cluster) -> tuple[Service, QueueDepth | None]:
    where = cluster.where
    try:
        cluster.check_broker()
    except Unreachable as exc:
        return Service("broker", where, False, error=str(exc)), None
    with cluster.app.connection_for_read() as connection:
        connection.ensure_connection(max_retries=1)
        properties = connection.connection.server_properties
        service = Service(
            "broker",
            where,
            True,
            product=_text(properties.get("product", "")),
            version=_text(properties.get("version", "")),
        )
        queue = None
        # A queue not declared yet (no worker ever started) answers 404 and closes
        # the channel: shown as absent.
        with contextlib.suppress(Exception):
            channel = connection.channel()
            try:
                name, ready, consumers = channel.queue_declare(queue=QUEUE, passive=True)
                queue = QueueDepth(_text(name), int(ready), int(consumers))
            finally:
                with contextlib.suppress(Exception):
                    channel.close()
    return service, queue


def _backend(cluster: Cluster) -> Service:
    where = where_of(cluster.settings.result_backend)
    try:
        cluster.check_backend()
        # HELLO, not INFO: the deployed ACL denies INFO (@dangerous), not HELLO.
        hello = _pairs(cluster.app.backend.client.execute_command("HELLO"))
    except Unreachable as exc:
        return Service("backend", where, False, error=str(exc))
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        return Service("backend", where, False, error=" ".join(str(exc).split()))
    except redis.exceptions.ResponseError as exc:  # refused by an ACL: still up
        return Service("backend", where, True, product="redis", error=str(exc))
    return Service(
        "backend",
        where,
        True,
        product=hello.get("server", "redis"),
        version=hello.get("version", ""),
    )


def _workers(cluster: Cluster) -> list[WorkerStatus]:
    control = cluster.app.control
    stats = control.inspect(timeout=REPLY_SECONDS).stats() or {}
    replies = control.broadcast(INFO_COMMAND, reply=True, timeout=REPLY_SECONDS) or []
    info: dict[str, dict[str, Any]] = {}
    for reply in replies:
        for node, answer in reply.items():
            if isinstance(answer, dict) and "mcpi" in answer:
                info[node] = answer
    workers = []
    for node in sorted(set(stats) | set(info)):
        answer = info.get(node, {})
        reserved = int(answer.get("reserved", 0))
        running = int(answer.get("active", 0))
        workers.append(
            WorkerStatus(
                node=node,
                host=node.partition("@")[2] or node,
                slots=int(answer.get("slots") or concurrency(stats.get(node, {}))),
                running=running,
                prefetched=max(0, reserved - running),
                load=tuple(float(x) for x in answer.get("load", ())),
                cpus=int(answer.get("cpus", 0)),
                versions={
                    k: str(answer[k]) for k in ("mcpi", "celery", "numpy", "python") if k in answer
                },
            )
        )
    return workers


def _pairs(reply: Any) -> dict[str, str]:
    """HELLO's reply (a map, or a flat RESP2 list of keys and values) as text."""
    pairs = reply.items() if isinstance(reply, dict) else zip(reply[::2], reply[1::2], strict=True)
    return {_text(k): _text(v) for k, v in pairs}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
