"""``mcpi-hub status``: the cluster at a glance, and version skew between hub and workers.

The broker is asked over AMQP itself (its server properties, and a passive declare of
the ``mcpi`` queue for the messages waiting and its consumers: no management plugin
needed), the backend with Redis ``INFO``, and the workers with one broadcast of their
``mcpi_info`` command (:mod:`mcpi.cluster.worker_control`), which also counts the chunks each holds
unacknowledged (acks are late: running, or prefetched for a free slot).
"""

from __future__ import annotations

import contextlib
import ssl
from datetime import UTC, datetime
from typing import Any

import amqp.exceptions
import kombu.exceptions
import kombu.pools
import redis.exceptions

from mcpi import __version__
from mcpi.cluster.app import QUEUE
from mcpi.cluster.client import REPLY_SECONDS, ClusterClient, concurrency
from mcpi.errors import Unreachable
from mcpi.ops.snapshot import ClusterStatus, QueueDepth, Service, WorkerStatus
from mcpi.settings import Settings

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
        cluster = ClusterClient(settings)
        try:
            broker = Service("broker", cluster.where, False, error=f"connection lost: {reason}")
            return ClusterStatus(__version__, broker, _backend(cluster), None, [])
        finally:
            cluster.close()


def _gather(settings: Settings) -> ClusterStatus:
    cluster = ClusterClient(settings)
    try:
        broker, queue = _broker(cluster)
        backend = _backend(cluster)
        consumers = queue.consumers if queue is not None else None
        workers = _workers(cluster, consumers) if broker.reachable else []
        return ClusterStatus(__version__, broker, backend, queue, workers)
    finally:
        cluster.close()


def _broker(cluster: ClusterClient) -> tuple[Service, QueueDepth | None]:
    where = cluster.where
    try:
        cluster.check_broker()
    except Unreachable as exc:
        return Service("broker", where, False, error=str(exc)), None
    with cluster.app.connection_for_read() as connection:
        connection.ensure_connection(max_retries=1)
        properties = connection.connection.server_properties
        tls, expires = _tls_of(getattr(connection.connection.transport, "sock", None))
        service = Service(
            "broker",
            where,
            True,
            product=_text(properties.get("product", "")),
            version=_text(properties.get("version", "")),
            tls=tls,
            certificate_expires=expires,
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


def _backend(cluster: ClusterClient) -> Service:
    where = cluster.backend
    try:
        cluster.check_backend()
        client = cluster.results.client
        # HELLO, not INFO: the deployed ACL denies INFO (@dangerous), not HELLO.
        hello = _pairs(client.execute_command("HELLO"))
        tls, expires = _redis_tls(client)
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
        tls=tls,
        certificate_expires=expires,
    )


def _workers(cluster: ClusterClient, expected: int | None) -> list[WorkerStatus]:
    """Every worker's status; listening stops once the queue's consumers have answered."""
    control = cluster.app.control
    stats = control.inspect(timeout=REPLY_SECONDS, limit=expected or None).stats() or {}
    info = cluster.worker_info(expected=expected or None)
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
                models={
                    name: str(m.get("version")) if isinstance(m, dict) else "?"
                    for name, m in (answer.get("models") or {}).items()
                },
                kernel=str(answer.get("kernel", "")),
                kernel_note=str(answer.get("kernel_note", "")),
                exact=str(answer.get("exact", "")),
                exact_note=str(answer.get("exact_note", "")),
            )
        )
    return workers


def _redis_tls(client: Any) -> tuple[str, datetime | None]:
    """The TLS of one of a redis-py client's pooled connections (connected by the HELLO)."""
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        return _tls_of(getattr(connection, "_sock", None))
    finally:
        pool.release(connection)


def _tls_of(sock: Any) -> tuple[str, datetime | None]:
    """A socket's TLS version and its peer certificate's end ("" and None: plain TCP)."""
    if not isinstance(sock, ssl.SSLSocket):
        return "", None
    expires = None
    with contextlib.suppress(ValueError, KeyError, TypeError):
        not_after = (sock.getpeercert() or {})["notAfter"]
        expires = datetime.fromtimestamp(ssl.cert_time_to_seconds(str(not_after)), UTC)
    return sock.version() or "TLS", expires


def _pairs(reply: Any) -> dict[str, str]:
    """HELLO's reply (a map, or a flat RESP2 list of keys and values) as text."""
    pairs = reply.items() if isinstance(reply, dict) else zip(reply[::2], reply[1::2], strict=True)
    return {_text(k): _text(v) for k, v in pairs}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
