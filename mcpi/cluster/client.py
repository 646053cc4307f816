"""The hub's connection to a cluster: broker and backend checks, preflight, broadcasts.

One :class:`ClusterClient` holds the hub's Celery app (built from the settings, passed
explicitly) and answers the questions every user of a cluster asks -- can the broker
and the backend be reached with these credentials, which workers answer, how many
slots they have -- in one place, for the executor, ``status`` and ``hosts restart``.
Every lost connection comes out as :class:`~mcpi.errors.Unreachable`, naming the
service and its ``host:port`` (never the credentials).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import amqp.exceptions
import redis.exceptions
from amqp.exceptions import AccessRefused, NotAllowed, NotFound
from kombu.exceptions import OperationalError

from mcpi.cluster.app import INFO_COMMAND, QUEUE, create_app
from mcpi.cluster.confirms import ConfirmedChannel
from mcpi.cluster.tls import NO_HANDSHAKE, describe_failure
from mcpi.core.model import ModelCall
from mcpi.errors import (
    McpiError,
    ModelMissing,
    NoHandshake,
    NoWorkers,
    Refused,
    TlsRefused,
    Unreachable,
)
from mcpi.settings import Settings

#: Seconds the hub listens for workers' replies to a broadcast, at most: it stops as
#: soon as as many workers answered as consume the mcpi queue.
REPLY_SECONDS = 1.0

REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
#: What a broker or backend that went away raises: kombu's wrapped errors, amqp's and
#: redis-py's own, and plain socket errors.
SERVICE_ERRORS = (
    *REDIS_ERRORS,
    OperationalError,
    OSError,
    amqp.exceptions.ConnectionError,  # a broker shutting down: ConnectionForced
)
#: The socket errors of a service gone (as opposed to the hub's own files failing).
NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.EHOSTDOWN,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.ENOTCONN,
    }
)


def service_gone(exc: BaseException) -> bool:
    """Whether ``exc``, one of :data:`SERVICE_ERRORS`, says a service went away, rather
    than that the hub's own disk failed (a journal that cannot be written must end the
    job, not be waited out as an outage).

    >>> service_gone(ConnectionResetError(errno.ECONNRESET, "reset"))
    True
    >>> service_gone(ssl.SSLEOFError(8, "EOF occurred in violation of protocol"))
    True
    >>> service_gone(OSError(errno.ENOSPC, "No space left on device"))
    False
    """
    if not isinstance(exc, OSError):
        return True  # redis-py's, kombu's and amqp's own errors: all of the network
    if isinstance(exc, ConnectionError | TimeoutError | ssl.SSLError | socket.gaierror):
        return True
    return exc.errno in NETWORK_ERRNOS


#: Result keys handled per round trip.
KEYS_PER_ROUND_TRIP = 1000
#: How long a result stays in the backend once its job has counted it: long enough for
#: a worker that lost the process which stored it to find it there (and acknowledge the
#: chunk rather than run it again), and for the last look at a late copy; then it goes,
#: rather than staying for ``result_expires``.
COUNTED_SECONDS = 120

#: The longest pause between two tries of a service the hub waits for.
RETRY_SECONDS = 2.0
#: A connection closed before its TLS handshake is tried again for this long while the
#: hub waits for services (see :class:`~mcpi.errors.NoHandshake`).
HANDSHAKE_PATIENCE = 3.0

log = logging.getLogger(__name__)

T = TypeVar("T")


def riding_out(
    call: Callable[[], T],
    wait: Callable[[BaseException], None],
    errors: tuple[type[BaseException], ...] = SERVICE_ERRORS,
) -> T:
    """``call()``, tried again after each of ``errors`` once ``wait(error)`` returns
    (it waits for the broker and backend, and raises if they stay away)."""
    while True:
        try:
            return call()
        except errors as exc:
            wait(exc)


class ClusterClient:
    """The broker, the result backend and the workers behind ``settings``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings, role="hub")
        # Bound every backend round trip: a silent Redis must not stall the hub for
        # the client's default two minutes.
        self.app.conf.redis_socket_timeout = settings.connect_timeout + 5
        #: The result backend, one for every thread of this hub. Celery makes one per
        #: thread, each with its own connections: a sweep's threads would each pay new
        #: connections and TLS handshakes. (Its Redis client is thread-safe.)
        self.results: Any = self.app.backend
        #: Channels for publishing chunks, kept between batches (see :meth:`publishing`).
        self._idle_channels: list[ConfirmedChannel] = []
        self._channels_lock = threading.Lock()

    @property
    def where(self) -> str:
        """The cluster's name: its broker's ``host:port/vhost``."""
        return self.broker + "/" + _vhost(self.settings.broker_url)

    @property
    def broker(self) -> str:
        return where_of(self.settings.broker_url)

    @property
    def backend(self) -> str:
        return where_of(self.settings.result_backend)

    def check_broker(self) -> None:
        try:
            with self.app.connection_for_write() as connection:
                connection.ensure_connection(
                    max_retries=1,
                    interval_start=0,
                    interval_step=0,
                    timeout=self.settings.connect_timeout,
                )
        except (AccessRefused, NotAllowed) as exc:
            user = urlsplit(self.settings.broker_url or "").username
            raise Refused(
                f"the broker at {self.broker} refused user {user!r} "
                f"(wrong user name, password or vhost): {exc.reply_text}"
            ) from None
        except (OperationalError, OSError) as exc:
            raise _unreachable(
                f"the broker at {self.broker}", exc, self.settings.broker_tls
            ) from None

    def check_backend(self) -> None:
        try:
            self.results.client.ping()
        except redis.exceptions.AuthenticationError:
            raise Refused(
                f"the result backend at {self.backend} refused the credentials "
                "(wrong user name or password)"
            ) from None
        except redis.exceptions.ResponseError as exc:
            raise Refused(
                f"the result backend at {self.backend} refused the connection: {exc}"
            ) from None
        except (*REDIS_ERRORS, OSError) as exc:
            service = f"the result backend at {self.backend}"
            raise _unreachable(service, exc, self.settings.backend_tls) from None

    def preflight(
        self, model: ModelCall, wait: float = 0.0
    ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """Check the broker, the backend and the workers' code for ``model``; the
        answering workers' stats and ``mcpi_info`` replies, by node.

        A broker or backend that cannot be reached, or workers that do not answer, may
        be restarting (a host rebooted, a service upgraded): the hub tries again for up
        to ``wait`` seconds, saying once what it waits for, before it gives up. A
        service that answers and refuses (credentials, TLS) fails at once, and so does
        a worker without the model.
        """
        deadline = time.monotonic() + wait
        pauses = _back_off()
        waiting_for = ""
        no_handshake_since: float | None = None
        while True:
            try:
                stats = self._preflight()
                return stats, self.check_model(model, list(stats))
            except NoHandshake:
                # A server stopping or starting may take a connection and close it
                # before TLS (seen in the chaos soak, Redis restarting as a hub
                # started); one that never speaks TLS is refused after a few seconds.
                now = time.monotonic()
                no_handshake_since = no_handshake_since or now
                if now >= min(deadline, no_handshake_since + HANDSHAKE_PATIENCE):
                    raise
                time.sleep(min(next(pauses), deadline - now))
            except (Refused, TlsRefused):
                raise
            except (Unreachable, NoWorkers) as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _after_waiting(exc, wait) from None
                what = _awaited(exc)
                if what != waiting_for:
                    log.warning("waiting up to %.0fs: %s", wait, exc)
                    waiting_for = what
                time.sleep(min(next(pauses), left))

    def _preflight(self) -> dict[str, dict[str, Any]]:
        """One try of :meth:`preflight`.

        The broker knows at once how many workers consume the mcpi queue (one consumer
        each): the hub listens until that many have answered, not for a fixed second,
        and for ``REPLY_SECONDS`` only if some stay silent (or none consume yet).
        """
        self.check_broker()
        self.check_backend()
        with self.connection_errors():
            expected = self.queue_state()[1]
            inspect = self.app.control.inspect(timeout=REPLY_SECONDS, limit=expected or None)
            stats = inspect.stats() or {}
        if not stats:
            raise NoWorkers(
                f"no mcpi worker answered on the broker at {self.broker} (are the workers "
                "running? use --local to run on this machine)"
            )
        return stats

    def wait_for_services(
        self, error: BaseException, grace: float, tick: Callable[[], None] = lambda: None
    ) -> None:
        """Wait until the broker and the backend answer again (one went away: ``error``).

        ``tick`` runs between tries (a job's deadline check). Raises
        :class:`Unreachable` if they stay away for ``grace`` seconds.
        """
        give_up = time.monotonic() + grace
        while True:
            tick()
            try:
                self.results.client.ping()
                self.check_broker()
                return
            except (*REDIS_ERRORS, Unreachable):
                if time.monotonic() >= give_up:
                    raise Unreachable(
                        f"lost the broker at {self.broker} or the result backend at "
                        f"{self.backend} for more than {grace:.0f}s: {error}"
                    ) from None
                time.sleep(1)

    def queue_state(self) -> tuple[int, int]:
        """(messages waiting, consumers) of the mcpi queue; (0, 0) if never declared.

        On a pooled broker connection: the hub asks this every fraction of a second at
        a job's tail (:mod:`mcpi.cluster.backups`), a channel's round trip each time.
        """
        with self.app.pool.acquire(block=True, timeout=self.settings.connect_timeout) as connection:
            connection.ensure_connection(max_retries=1)
            channel = connection.channel()
            try:
                _, ready, consumers = channel.queue_declare(queue=QUEUE, passive=True)
                return int(ready), int(consumers)
            except NotFound:  # no worker has declared it yet
                return 0, 0
            finally:
                with contextlib.suppress(Exception):
                    channel.close()

    def worker_info(self, expected: int | None = None) -> dict[str, dict[str, Any]]:
        """Each answering worker's ``mcpi_info`` reply (versions, load, models), by node.

        With ``expected``, stop listening once that many have answered.
        """
        with self.connection_errors():
            replies = (
                self.app.control.broadcast(
                    INFO_COMMAND, reply=True, timeout=REPLY_SECONDS, limit=expected
                )
                or []
            )
        return {
            node: answer
            for reply in replies
            for node, answer in reply.items()
            if isinstance(answer, dict) and "mcpi" in answer
        }

    def check_model(self, call: ModelCall, nodes: list[str]) -> dict[str, dict[str, Any]]:
        """Refuse a model job unless every worker in ``nodes`` has the model's exact code.

        The workers' ``mcpi_info`` replies, for what else the hub checks in them.
        """
        info = self.worker_info(expected=len(nodes))
        lacking, differing = [], []
        for node in sorted(nodes):
            if node not in info:
                # Silent now (paused, restarting) though it answered the preflight: not
                # a worker without the model. Should it come back with other code, it
                # refuses the chunks itself (each names its model's version and digest).
                continue
            have = (info.get(node) or {}).get("models") or {}
            found = have.get(call.name)
            if not isinstance(found, dict):
                lacking.append(node)
            elif (found.get("version"), found.get("digest")) != (call.version, call.digest):
                differing.append(f"{node} (version {found.get('version')}, {found.get('digest')})")
        if lacking or differing:
            parts = []
            if lacking:
                parts.append(f"lacking it: {', '.join(lacking)}")
            if differing:
                parts.append(f"with other code: {', '.join(differing)}")
            raise ModelMissing(
                f"model {call.name} version {call.version} ({call.digest}) is not on every "
                f"worker; {'; '.join(parts)} (deploy it: docs/guide/models.md)"
            )
        return info

    @contextlib.contextmanager
    def connection_errors(self) -> Iterator[None]:
        """A lost broker or result backend, as :class:`Unreachable` naming it."""
        try:
            yield
        except REDIS_ERRORS as exc:
            raise Unreachable(f"lost the result backend at {self.backend}: {exc}") from None
        except (OperationalError, OSError, amqp.exceptions.ConnectionError) as exc:
            raise Unreachable(f"lost the broker at {self.broker}: {exc}") from None

    def worker_nodes(self) -> list[str]:
        """The workers answering a ping now (``name@host``); none if the broker is gone."""
        try:
            replies = self.app.control.ping(timeout=REPLY_SECONDS) or []
        except (OperationalError, OSError):
            return []
        return [node for reply in replies for node in reply]

    def live_workers(self) -> int:
        return len(self.worker_nodes())

    def revoke(self, task_ids: list[str]) -> None:
        """Withdraw work nobody will collect (best effort: the broker may be gone)."""
        # The job is failing already: report that, not a second error from the revoke.
        with contextlib.suppress(Exception):
            self.app.control.revoke(task_ids)

    def expire_soon(self, task_ids: list[str]) -> None:
        """Let the stored results of ``task_ids`` expire in :data:`COUNTED_SECONDS`
        (best effort: they expire after ``result_expires`` anyway)."""
        keys = [self.results.get_key_for_task(t) for t in task_ids]
        with contextlib.suppress(*REDIS_ERRORS):
            for i in range(0, len(keys), KEYS_PER_ROUND_TRIP):
                pipe = self.results.client.pipeline(transaction=False)
                for key in keys[i : i + KEYS_PER_ROUND_TRIP]:
                    pipe.expire(key, COUNTED_SECONDS)
                pipe.execute()

    @contextlib.contextmanager
    def publishing(self) -> Iterator[ConfirmedChannel]:
        """A channel for publishing a batch of task messages, every one confirmed by the
        broker when the block ends (:mod:`mcpi.cluster.confirms`).

        Channels are kept for the next batch, of any thread (a sweep's threads come and
        go): as many as batches were ever published at once. One that failed is closed.
        """
        with self._channels_lock:
            channel = self._idle_channels.pop() if self._idle_channels else None
        if channel is None:
            channel = ConfirmedChannel(self.app, self.settings.connect_timeout + 5)
        try:
            yield channel
            channel.settle()
        except BaseException:
            channel.close(lost=True)
            raise
        with self._channels_lock:
            self._idle_channels.append(channel)

    def close(self) -> None:
        """Release the connections this hub opened.

        Not ``app.close()``: kombu's connection pools are process-wide and keyed by
        URL, and force-closing them would hand the next hub in this process a dead
        connection. Broker connections go back to that pool after each use; the
        backend's Redis connections and the publishing channels belong to this client
        alone and are closed here.
        """
        with contextlib.suppress(Exception):  # best effort: the job's outcome stands
            self.results.client.connection_pool.disconnect()
        with self._channels_lock:
            channels, self._idle_channels = self._idle_channels, []
        for channel in channels:
            channel.close()


def slots_by_host(workers: Mapping[str, dict[str, Any]]) -> dict[str, int]:
    """Worker slots per host from the workers' stats (a node ``name@host`` counts for ``host``)."""
    slots: dict[str, int] = {}
    for node, stats in workers.items():
        host = node.partition("@")[2] or node
        slots[host] = slots.get(host, 0) + concurrency(stats)
    return slots


def concurrency(stats: dict[str, Any]) -> int:
    try:
        return int(stats["pool"]["max-concurrency"])
    except (KeyError, TypeError, ValueError):
        return 1


def _awaited(error: Unreachable | NoWorkers) -> str:
    """What a failed preflight waits for: the service its message names, or workers."""
    if isinstance(error, NoWorkers):
        return "a worker to answer"
    message = str(error)
    for service in ("the broker", "the result backend"):
        if service in message:
            return service
    return "the cluster"


def _back_off(first: float = 0.25) -> Iterator[float]:
    """Pauses between tries: doubling from ``first`` up to ``RETRY_SECONDS``.

    >>> from itertools import islice
    >>> list(islice(_back_off(), 6))
    [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    """
    pause = first
    while True:
        yield pause
        pause = min(2 * pause, RETRY_SECONDS)


def _after_waiting(error: Unreachable | NoWorkers, waited: float) -> McpiError:
    """``error`` once the hub has waited ``waited`` seconds for it to pass."""
    if waited <= 0:
        return error
    return type(error)(f"{error}; still so after waiting {waited:.0f}s (MCPI_SERVICE_WAIT)")


def _unreachable(service: str, error: BaseException, tls: bool) -> Unreachable:
    """A failed connection to ``service`` as the error to raise: TlsRefused if TLS refused it."""
    refused = describe_failure(error, tls)
    if refused:
        kind = NoHandshake if refused.startswith(NO_HANDSHAKE) else TlsRefused
        return kind(f"{service}: {refused}")
    return Unreachable(f"cannot reach {service}: {error}")


def _vhost(url: str | None) -> str:
    return urlsplit(url or "").path.lstrip("/") or "/"


def where_of(url: str | None) -> str:
    """``host:port`` of a URL: what a user needs to know, with no credentials."""
    parts = urlsplit(url or "")
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.hostname}:{port}" if port else str(parts.hostname)
