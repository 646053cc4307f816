"""The Celery application, built from :class:`~mcpi.settings.Settings` and passed explicitly.

Every setting below was chosen against a fault (see docs/faults.md, "what happens when"
table): JSON only, so a pickle message is refused before anything runs; late
acknowledgement with one message prefetched per slot, so a chunk whose worker dies is
redelivered rather than lost; publisher confirms, so a message the broker did not take
is an error, not silence (the hub's chunks are confirmed a wave at a time:
:mod:`mcpi.cluster.confirms`); broker heartbeats, so a cut-off host's chunks return to
the queue within seconds.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Literal

from celery import Celery, states
from celery.backends.redis import RedisBackend
from celery.exceptions import BackendStoreError

from mcpi.cluster.tasks import register_tasks
from mcpi.cluster.tls import backend_ssl_options, broker_ssl_options
from mcpi.settings import Settings

#: The queue every mcpi worker consumes and the hub publishes to.
QUEUE = "mcpi"

#: Redis keys of chunk results and chords carry this prefix, so that a Redis ACL user
#: can be confined to ``~mcpi:*``.
KEY_PREFIX = "mcpi:"

#: Seconds between AMQP heartbeats: a paused or unplugged worker loses its channel,
#: and its unacknowledged chunk goes back to the queue, about two heartbeats later.
BROKER_HEARTBEAT = 10

#: The workers' own remote-control command (:mod:`mcpi.cluster.worker_control` answers it).
INFO_COMMAND = "mcpi_info"

Role = Literal["hub", "worker"]


class AppRedisBackend(RedisBackend):  # type: ignore[misc]  # celery is untyped
    """Celery's Redis result backend as an app's ``backend_cls``: Celery then builds it
    with no URL (the class stands where the URL would), so it takes ``result_backend``."""

    def __init__(self, app: Celery, url: str | None = None, **kwargs: object) -> None:
        super().__init__(app=app, url=url or app.conf.result_backend, **kwargs)


class HubResults(AppRedisBackend):
    """Celery's Redis result backend as the hub uses it: no subscription per task sent.

    Celery's backend subscribes to each task's result channel as the task is sent, for
    an ``AsyncResult.get()`` the hub never calls: the hub listens for its chunks itself
    (:mod:`mcpi.cluster.arrivals`) and reads results with MGET. Those subscriptions
    cost a round trip per task, a connection (with its TLS handshake) per hub thread,
    and messages nobody reads.
    """

    def on_task_call(self, producer: object, task_id: str) -> None:
        """Nothing (see the class)."""


#: A task's state, stored unless the task already succeeded, and announced: one round
#: trip where Celery's backend takes two (a GET, then a SET and PUBLISH), and atomic, so
#: that a late copy's STARTED can never land between another copy's check and its store.
STORE_UNLESS_DONE = """
local current = redis.call('GET', KEYS[1])
if current then
    local ok, meta = pcall(cjson.decode, current)
    if ok and type(meta) == 'table' and meta['status'] == 'SUCCESS' then return 0 end
end
if tonumber(ARGV[2]) > 0 then
    redis.call('SETEX', KEYS[1], ARGV[2], ARGV[1])
else
    redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1
"""


class WorkerResults(AppRedisBackend):
    """Celery's Redis result backend as workers use it: each state stored in one round trip.

    Celery stores a task's state (STARTED, then SUCCESS) by reading the key first, so
    that a duplicate delivery cannot overwrite a success, and then writing and
    announcing it: two round trips a state, four of a chunk's five. Here a small script
    does the same at the server (:data:`STORE_UNLESS_DONE`): on an emulated 1,600-slot
    cluster every chunk's hand-over costs the workers' CPU, and it is mostly these
    round trips.
    """

    def _store_result(
        self,
        task_id: str,
        result: object,
        state: str,
        traceback: object = None,
        request: object = None,
        **kwargs: object,
    ) -> object:
        meta = self._get_result_meta(
            result=result, state=state, traceback=traceback, request=request
        )
        meta["task_id"] = task_id.decode() if isinstance(task_id, bytes) else task_id
        value = self.encode(meta)
        if isinstance(value, str) and len(value) > self._MAX_STR_VALUE_SIZE:
            raise BackendStoreError(
                "value too large for Redis backend", state=state, task_id=task_id
            )
        expires = self.failure_expires if state == states.FAILURE else self.expires
        key = self.get_key_for_task(task_id)
        self.ensure(self._store_unless_done, (key, value, int(expires or 0)))
        return result

    def on_chord_part_return(
        self, request: object, state: str, result: object, propagate: object = None, **kwargs: Any
    ) -> None:
        """Celery's, retried like a store when Redis is lost meanwhile: unretried, a Redis
        restarting just then failed the chunk it had counted (its part is a set member and
        the callback is claimed once, so a second try counts nothing twice)."""
        part = super().on_chord_part_return
        self.ensure(lambda: part(request, state, result, propagate, **kwargs), ())

    def _store_unless_done(self, key: bytes, value: str, expires: int) -> None:
        self._store_script(keys=[key], args=[value, expires])

    @cached_property
    def _store_script(self) -> Any:
        return self.client.register_script(STORE_UNLESS_DONE)


def create_app(settings: Settings, role: Role = "hub") -> Celery:
    """A Celery app for the hub (bounded waits, fails fast) or for a worker (rides out outages)."""
    if not settings.cluster_configured:
        raise ValueError("no broker configured")
    app = Celery("mcpi", set_as_current=False)
    app.conf.update(
        broker_url=settings.broker_url,
        result_backend=settings.result_backend,
        # Serialisation: JSON everywhere; pickle is refused on receipt.
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        # Nothing lost: acknowledge after the chunk is counted; a worker lost mid-chunk
        # requeues it (retried at most settings.chunk_retries times, see tasks).
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        task_default_queue=QUEUE,
        task_create_missing_queues=True,
        broker_transport_options={"confirm_publish": True},
        broker_heartbeat=BROKER_HEARTBEAT,
        broker_connection_timeout=settings.connect_timeout,
        broker_connection_retry_on_startup=True,
        # Results: kept long enough for any job (and its resumption), then expire on
        # their own, so an abandoned job leaves nothing behind for good.
        result_expires=settings.result_expires,
        result_chord_expires=settings.result_expires,
        result_backend_transport_options={"global_keyprefix": KEY_PREFIX},
        redis_socket_connect_timeout=settings.connect_timeout,
        redis_backend_health_check_interval=10,
        # A chunk's "started" state (with the worker's node name) tells the hub when and
        # where each copy runs: what says a chunk is overdue (mcpi.cluster.backups).
        task_track_started=True,
        # Quiet, lean workers: no events.
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_hijack_root_logger=role == "worker",
        # TLS with amqps:// and rediss:// URLs: the server's certificate checked against
        # the cluster's CA and the address dialled (mcpi.cluster.tls).
        broker_use_ssl=broker_ssl_options(settings),
        redis_backend_use_ssl=backend_ssl_options(settings),
    )
    if role == "hub":
        app.backend_cls = HubResults  # over the URL's class: result_backend stays the URL
        app.conf.update(
            # The hub's connection idles while it polls Redis during a job; with
            # heartbeats negotiated the broker would drop it and the next broadcast
            # (ping, revoke) would fail. Heartbeats guard consumers, i.e. workers.
            broker_heartbeat=0,
            # An unreachable broker is reported, not waited on: a couple of quick retries.
            broker_connection_max_retries=2,
            task_publish_retry_policy={
                "max_retries": 2,
                "interval_start": 0,
                "interval_step": 0.5,
                "interval_max": 1,
            },
            result_backend_always_retry=False,
        )
    else:
        app.backend_cls = WorkerResults
        app.conf.update(
            # A worker outlives broker and backend restarts: it keeps reconnecting.
            broker_connection_max_retries=None,
            result_backend_always_retry=True,
            result_backend_max_retries=float("inf"),
        )
    register_tasks(app, settings)
    return app
