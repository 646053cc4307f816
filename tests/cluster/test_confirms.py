"""A batch of task messages, confirmed by a real broker with one wait (mcpi.cluster.confirms)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from kombu import Queue

from mcpi.cluster.client import ClusterClient
from mcpi.cluster.confirms import WINDOW
from mcpi.cluster.tasks import COUNT_CHUNK
from mcpi.errors import JobFailed
from mcpi.settings import load_settings
from mcpi.testing.servers import RabbitMQ

pytestmark = pytest.mark.integration


@pytest.fixture
def client(cluster_env: dict[str, str]) -> Iterator[ClusterClient]:
    client = ClusterClient(load_settings(env=cluster_env))
    yield client
    client.close()


@contextlib.contextmanager
def queue(rabbitmq: RabbitMQ, name: str, **arguments: object) -> Iterator[object]:
    """A queue of its own on the private broker (deleted afterwards), and a channel."""
    connection = rabbitmq.connection()
    connection.connect()
    channel = connection.channel()
    try:
        channel.queue_declare(name, durable=True, auto_delete=False, arguments=arguments)
        yield channel
    finally:
        channel.queue_delete(name)
        connection.collect()


def waiting(channel: object, name: str) -> int:
    _, count, _ = channel.queue_declare(name, passive=True)  # type: ignore[attr-defined]
    return int(count)


def test_a_batch_beyond_the_window_is_published_whole_and_confirmed(
    client: ClusterClient, rabbitmq: RabbitMQ
) -> None:
    # More messages than may wait unconfirmed: the channel reads confirms as it goes
    # (a channel that never did would stall once the broker's writes filled the socket).
    total = 2 * WINDOW + 500
    with queue(rabbitmq, "confirms-window") as channel:
        with client.publishing() as batch:
            for i in range(total):
                batch.send_task(COUNT_CHUNK, (i,), task_id=f"w-{i}", queue="confirms-window")
            assert batch.through < total  # not all confirmed before the batch ends
        assert batch.published == batch.through == total
        assert waiting(channel, "confirms-window") == total
        # The channel is kept for the next batch.
        with client.publishing() as again:
            again.send_task(COUNT_CHUNK, (0,), task_id="w-again", queue="confirms-window")
        assert again is batch and waiting(channel, "confirms-window") == total + 1


def test_a_message_the_broker_refuses_fails_the_batch(
    client: ClusterClient, rabbitmq: RabbitMQ
) -> None:
    # A queue that takes one message and refuses the rest: the broker nacks them.
    name, limits = "confirms-full", {"x-max-length": 1, "x-overflow": "reject-publish"}
    full = Queue(name, routing_key=name, queue_arguments=limits)
    with queue(rabbitmq, name, **limits) as channel:
        with pytest.raises(JobFailed, match="broker refused"), client.publishing() as batch:
            for i in range(3):
                batch.send_task(COUNT_CHUNK, (i,), task_id=f"f-{i}", queue=full)
        assert waiting(channel, name) == 1
        # The failed batch's channel was closed; the next batch has a new one that works.
        with client.publishing() as fresh:
            fresh.send_task(COUNT_CHUNK, (0,), task_id="f-next", queue="confirms-fresh")
        assert fresh is not batch and fresh.through == fresh.published == 1
        channel.queue_delete("confirms-fresh")  # type: ignore[attr-defined]
