"""The fault matrix on real RabbitMQ, Redis and workers: exact count, or a clear bounded failure.

Each test breaks one thing while a job runs (or feeds the worker something hostile) and
checks the outcome the "what happens when..." table of docs/faults.md promises.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest

from mcpi.core.kernel import count_hits
from mcpi.errors import ExitStatus
from mcpi.testing.servers import RabbitMQ, Redis, wait_for
from mcpi.testing.tls import TestCA
from tests.helpers import Background, estimate, publish_task

pytestmark = pytest.mark.integration

# Fault injection from outside the product: a sitecustomize on the worker's PYTHONPATH
# that SIGKILLs the pool process about to count one chosen chunk, every time.
CRASHER = """
import os, signal
from celery.signals import task_prerun

@task_prerun.connect
def _crash(task=None, args=None, **_):
    chunk = int(os.environ["MCPI_TEST_CRASH_CHUNK"])
    if task is not None and task.name == "mcpi.count_chunk" and args[1][0] == chunk:
        os.kill(os.getpid(), signal.SIGKILL)
"""


def channel(broker: RabbitMQ) -> tuple[pika.BlockingConnection, Any]:
    connection = pika.BlockingConnection(broker.pika_parameters())
    return connection, connection.channel()


def test_a_chunk_that_kills_its_worker_every_time_fails_the_job_naming_it(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker, tmp_path: Path
) -> None:
    (tmp_path / "inject").mkdir()
    (tmp_path / "inject" / "sitecustomize.py").write_text(CRASHER)
    start_worker(
        "w1",
        concurrency=2,
        PYTHONPATH=str(tmp_path / "inject"),
        MCPI_TEST_CRASH_CHUNK="2",
    )
    began = time.monotonic()
    status, _, err = estimate(cluster_env, "-n", "8e7", "--chunk-size", "1e7", "--timeout", "120")
    assert status == ExitStatus.JOB_FAILED, err
    assert "chunk 2 failed" in err and err.count("\n") == 1
    assert time.monotonic() - began < 60


def test_a_chunk_delivered_twice_is_counted_once(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker, rabbitmq: RabbitMQ
) -> None:
    worker = start_worker("w1", concurrency=1)
    darts, seed = 8 * 10**8, 606
    job = Background(cluster_env, "-n", str(darts), "--seed", str(seed), "--chunk-size", "1e8")
    wait_for(lambda: " succeeded in " in worker.log(), 60, "a first chunk to finish")
    connection, ch = channel(rabbitmq)
    try:
        method, properties, body = None, None, None
        deadline = time.monotonic() + 30
        while method is None and time.monotonic() < deadline:
            method, properties, body = ch.basic_get("mcpi")
        assert method is not None, "no waiting chunk to duplicate"
        duplicated = properties.headers["id"]
        for _ in range(2):  # the original's two copies: one delivery too many
            ch.basic_publish("", "mcpi", body, properties)
        ch.basic_ack(method.delivery_tag)
    finally:
        connection.close()
    status, report, err = job.join(120)
    assert status == 0 and report is not None, err
    assert report["hits"] == count_hits(seed, 0, darts)
    assert sum(h["chunks"] for h in report["hosts"]) == report["chunks"] == 8
    assert worker.log().count(f"[{duplicated}] received") == 2


def test_hostile_messages_are_dropped_and_the_worker_keeps_serving(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker, rabbitmq: RabbitMQ, tmp_path: Path
) -> None:
    worker = start_worker("w1", concurrency=1)
    pid = worker.process.pid
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {marker}",))

    huge = json.dumps([["x" * (16 << 20), [0, 0, 1]], {}, {}]).encode()
    pickled = "application/x-python-serialize"
    publish_task(rabbitmq, "mcpi.count_chunk", [], pickled, pickle.dumps(Exploit()))
    publish_task(rabbitmq, "os.system", ["id"])
    publish_task(rabbitmq, "mcpi.count_chunk", [], body=b'[["unterminated')
    publish_task(rabbitmq, "mcpi.count_chunk", [], body=huge)
    connection, ch = channel(rabbitmq)
    try:
        wait_for(
            lambda: ch.queue_declare("mcpi", passive=True).method.message_count == 0,
            60,
            "the worker to take every hostile message",
        )
    finally:
        connection.close()

    # One log line each: refused (pickle), unknown (the task name), undecodable, and
    # the oversized one, accepted by the broker but refused by the task's checks.
    markers = (
        "untrusted content of type pickle",
        "unregistered task of type 'os.system'",
        "DecodeError",
        "MalformedMessage",
    )
    wait_for(lambda: all(m in worker.log() for m in markers), 60, "a log line for each")
    assert not marker.exists(), "a pickle payload ran"
    # Still the same worker, and it still counts exactly.
    assert worker.process.poll() is None and worker.process.pid == pid
    status, report, err = estimate(cluster_env, "-n", "5e7", "--seed", "3", "--chunk-size", "1e7")
    assert status == 0 and report is not None, err
    assert report["hits"] == count_hits(3, 0, 5 * 10**7)


#: A job on an own broker that a fault strikes mid-way: 16 chunks of 1e8 darts.
OWN_BROKER_DARTS = 16 * 10**8


@pytest.fixture
def own_broker(tmp_path: Path, cluster_ca: TestCA) -> Iterator[RabbitMQ]:
    """A RabbitMQ of the test's own, to stop and start (the session's serves the others)."""
    broker = RabbitMQ(tmp_path / "own-rabbitmq", ca=cluster_ca).start()
    try:
        yield broker
    finally:
        broker.stop()


def job_under_way(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker, broker: RabbitMQ, seed: int, chunks_done: int
) -> Background:
    """A job of :data:`OWN_BROKER_DARTS` on a worker of ``broker``, once ``chunks_done`` of
    its chunks are done."""
    env = {**cluster_env, "MCPI_BROKER_URL": broker.url, "MCPI_WORKER_GRACE": "90"}
    worker = start_worker("w1", concurrency=2, MCPI_BROKER_URL=broker.url)
    darts = str(OWN_BROKER_DARTS)
    job = Background(env, "-n", darts, "--seed", str(seed), "--chunk-size", "1e8")
    wait_for(
        lambda: worker.log().count(" succeeded in ") >= chunks_done,
        60,
        f"{chunks_done} chunk(s) to finish",
    )
    return job


def test_broker_restarted_mid_job_loses_nothing(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker, own_broker: RabbitMQ
) -> None:
    seed = 2024
    job = job_under_way(cluster_env, start_worker, own_broker, seed, chunks_done=1)
    own_broker.stop()
    own_broker.start()
    status, report, err = job.join(240)
    assert status == 0 and report is not None, err
    assert report["hits"] == count_hits(seed, 0, OWN_BROKER_DARTS)


def test_redis_restarted_without_its_data_mid_job_is_recovered(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker, redis_server: Redis
) -> None:
    worker = start_worker("w1", concurrency=2)
    darts, seed = 16 * 10**8, 777
    job = Background(cluster_env, "-n", str(darts), "--seed", str(seed), "--chunk-size", "1e8")
    wait_for(lambda: worker.log().count(" succeeded in ") >= 2, 60, "two chunks to finish")
    redis_server.stop()  # no persistence configured: every key is gone
    time.sleep(2)
    redis_server.start()
    status, report, err = job.join(240)
    assert status == 0 and report is not None, err
    assert report["hits"] == count_hits(seed, 0, darts)
    assert any("lost this job's state" in note for note in report["notes"])


def test_backend_state_lost_while_the_broker_is_down_is_resent_once_it_is_back(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker, redis_server: Redis, own_broker: RabbitMQ
) -> None:
    """Overlapping faults (found by the chaos soak): the backend loses the job's state
    while the broker is away. The hub finds the loss on its next look, and must wait for
    the broker before it sends the lost chunks again, not fail the job."""
    seed = 4242
    job = job_under_way(cluster_env, start_worker, own_broker, seed, chunks_done=2)
    own_broker.stop()
    # Every key of the job gone, as after a restart without data that the hub's
    # connections did not notice (ACLs keep FLUSHALL from the mcpi user).
    backend = redis_server.client()
    keys = list(backend.scan_iter(match="mcpi:*", count=1000))
    assert keys and backend.delete(*keys) == len(keys)
    time.sleep(5)  # the hub looks at the job's state every 2 s
    own_broker.start()
    status, report, err = job.join(240)
    assert status == 0 and report is not None, err
    assert report["hits"] == count_hits(seed, 0, OWN_BROKER_DARTS)
    assert any("lost this job's state" in note for note in report["notes"])


def test_a_killed_hub_leaves_no_work_piling_up(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker, rabbitmq: RabbitMQ, redis_server: Redis
) -> None:
    worker = start_worker("w1", concurrency=2, MCPI_RESULT_EXPIRES="1h")
    hub = subprocess.Popen(
        [sys.executable, "-m", "mcpi", "estimate", "-n", "1.2e9", "--chunk-size", "1e8"],
        env={**cluster_env, "MCPI_RESULT_EXPIRES": "1h"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(lambda: " succeeded in " in worker.log(), 60, "a first chunk to finish")
    hub.send_signal(signal.SIGKILL)
    hub.wait(10)

    # The workers finish what was queued: the queue drains, nothing is left unacknowledged.
    connection, ch = channel(rabbitmq)
    try:
        wait_for(
            lambda: (
                ch.queue_declare("mcpi", passive=True).method.message_count == 0
                and worker.log().count(" succeeded in ") >= 12
            ),
            120,
            "the queue to drain",
        )
    finally:
        connection.close()
    # And every result it left behind expires by itself.
    client = redis_server.client()
    try:
        keys = list(client.scan_iter("mcpi:*"))
        assert keys
        assert [(k, client.ttl(k)) for k in keys if not 0 < client.ttl(k) <= 3600] == []
    finally:
        client.close()
