"""`mcpi-hub estimate` through real RabbitMQ, Redis and celery worker processes."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from mcpi.cli import main
from mcpi.cluster.client import COUNTED_SECONDS, HANDSHAKE_PATIENCE
from mcpi.core.kernel import count_hits
from mcpi.errors import ExitStatus
from mcpi.testing.proxy import TcpProxy
from mcpi.testing.servers import RabbitMQ, Redis, Worker, free_port, wait_for
from tests.helpers import Background, estimate

pytestmark = pytest.mark.integration


def test_cluster_count_equals_the_local_count(cluster_env: dict[str, str], start_worker) -> None:  # type: ignore[no-untyped-def]
    start_worker("w1")
    start_worker("w2", concurrency=1)
    status, cluster, err = estimate(
        cluster_env, "-n", "2e8", "--seed", "2718", "--chunk-size", "7e6"
    )
    assert status == 0, err
    status, local, err = estimate(cluster_env, "-n", "2e8", "--seed", "2718", "--local")
    assert status == 0, err
    assert cluster is not None and local is not None
    assert cluster["hits"] == local["hits"] == count_hits(2718, 0, 2 * 10**8)
    assert cluster["mode"] == "cluster" and cluster["chunks"] == 29
    assert sum(h["chunks"] for h in cluster["hosts"]) == 29
    assert cluster["duplicates"] == 0 and cluster["worker_versions"] == [cluster["hub_version"]]


def test_a_polite_sandbox_worker_computes_in_the_idle_class_as_deployed_ones(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker
) -> None:
    # The benchmarks run their Celery worker so (SCHED_IDLE, nice 19, as the unit's
    # mcpi_worker_polite default): what they measure is how mcpi deploys.
    worker = start_worker("w1", polite=True)
    status, report, err = estimate(cluster_env, "-n", "4e7", "--seed", "5", "--chunk-size", "1e7")
    assert status == 0 and report is not None, err
    assert report["hits"] == count_hits(5, 0, 4 * 10**7)
    assert worker.process is not None
    for pid in (worker.process.pid, *worker.pool_pids()):
        assert os.sched_getscheduler(pid) == os.SCHED_IDLE, pid
        assert os.getpriority(os.PRIO_PROCESS, pid) == 19, pid


def test_the_hub_alone_listens_for_its_chunks_and_keeps_its_subscription_for_the_next_job(
    cluster_env: dict[str, str], redis_server: Redis
) -> None:
    """A chunk sent by the hub has one listener, the hub's own (Celery's backend would
    start its own, a connection per hub thread, for an AsyncResult.get the hub never
    calls); a job's subscription, unsubscribed, serves the next job on the same
    connection."""
    from mcpi.cluster.arrivals import Arrivals, Listeners
    from mcpi.cluster.chunks import chunk_task_id, send_chunks
    from mcpi.cluster.client import ClusterClient
    from mcpi.core.job import Job
    from mcpi.core.plan import Plan
    from mcpi.models.builtin import pi
    from mcpi.settings import load_settings

    client = ClusterClient(load_settings(env=cluster_env))
    listeners = Listeners(client.results)
    job = Job("listeners", 7, Plan(2, 1), pi.call({}))
    ids = [chunk_task_id(job.id, i) for i in range(2)]
    redis = redis_server.client()
    try:
        first = Arrivals(listeners)
        first.expect(ids[:1])
        send_chunks(client, job, {ids[0]: 0})  # no worker: it waits
        channel = client.results.get_key_for_task(ids[0])
        assert redis.pubsub_numsub(channel) == [(channel, 1)]
        # Celery's own listener (its backend's result consumer) was never started.
        assert client.results.result_consumer._pubsub is None
        pubsub = first._pubsub
        first.close()

        second = Arrivals(listeners)
        second.expect(ids[1:])
        assert second._pubsub is pubsub and second.live  # the same subscription, reused
        threading.Timer(0.5, client.results.store_result, (ids[1], {}, "SUCCESS")).start()
        started = time.monotonic()
        second.wait(5)
        assert 0.4 < time.monotonic() - started < 4  # woken by the new job's result
        second.close()

        # The backend restarts between two jobs: the kept subscription's connection is
        # dead, which the next job's first wait finds out (and ends, for a poll); that
        # job subscribes afresh rather than poll on a timer to its end.
        redis_server.stop()
        redis_server.start()
        third = Arrivals(listeners)
        third.expect(ids[:1])
        third.wait(1)
        assert third._pubsub is not pubsub and third.live and not third.failed
        threading.Timer(0.5, client.results.store_result, (ids[0], {}, "SUCCESS")).start()
        started = time.monotonic()
        third.wait(5)
        assert 0.4 < time.monotonic() - started < 4
        third.close()
    finally:
        redis.close()
        listeners.close()
        client.close()


def test_a_finished_job_leaves_nothing_in_the_backend_for_long(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker, redis_server: Redis
) -> None:
    # Its chunks' results (keyed by job and chunk: a resume finds them there) and its
    # chords' callbacks expire within two minutes once the hub has counted them, not
    # after result_expires; its mark is deleted.
    start_worker()
    status, report, err = estimate(cluster_env, "-n", "1e6", "--chunk-size", "2.5e5")
    assert status == 0 and report is not None, err
    client = redis_server.client()
    keys = {k.decode(): client.ttl(k) for k in client.scan_iter("mcpi:*")}
    client.close()
    job = {k: ttl for k, ttl in keys.items() if report["job_id"] in k}
    assert {f"mcpi:celery-task-meta-mcpi-{report['job_id']}-{i}" for i in range(4)} <= set(job)
    assert all(0 < ttl <= COUNTED_SECONDS for ttl in job.values()), job


def test_a_pool_process_killed_mid_chunk_loses_nothing(
    cluster_env: dict[str, str], start_worker
) -> None:  # type: ignore[no-untyped-def]
    worker = start_worker("w1", concurrency=2)
    # 20 chunks of about 0.3 s each with the compiled kernel: the victim is still busy
    # when it is killed, a few chunks in.
    darts, seed = 10_000_000_000, 31415
    job = Background(cluster_env, "-n", str(darts), "--seed", str(seed), "--chunk-size", "5e8")
    wait_for(lambda: " succeeded in " in worker.log(), 60, "a first chunk to finish")
    victim = worker.pool_pids()[0]
    os.kill(victim, signal.SIGKILL)
    status, report, err = job.join(180)
    assert status == 0, err
    assert report is not None and report["hits"] == count_hits(seed, 0, darts)
    assert "WorkerLostError" in worker.log() or "exited prematurely" in worker.log()


@pytest.mark.parametrize(
    ("moment", "why"),
    [
        ("counting:-1", "chunk(s) 1 stored a result that the chord never counted"),
        ("sending", "the worker process that completed the chord was lost before sending it"),
    ],
)
def test_a_pool_process_lost_as_a_chord_counts_its_chunk_or_sends_its_callback(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker, tmp_path: Path, moment: str, why: str
) -> None:
    # The process dies after chunk 1 stored its result, before the chord counts it (the
    # worker acknowledges the chunk, its result being stored), or after claiming the
    # chord's callback, before sending it: either way the callback never comes. The
    # hub sees the chord neither fired nor claimed, and its own tally stands.
    died = tmp_path / "died"
    worker = start_worker(
        "w1",
        app="tests.cluster.dying_worker",
        PYTHONPATH=str(Path(__file__).parents[2]),
        MCPI_TEST_DIE=moment,
        MCPI_TEST_DIE_MARKER=str(died),
    )
    darts, seed = 400_000_000, 1618
    job = Background(cluster_env, "-n", str(darts), "--seed", str(seed), "--chunk-size", "5e7")
    status, report, err = job.join(60)
    assert status == 0, err
    assert report is not None and report["hits"] == count_hits(seed, 0, darts)
    expected = f"the chord callback of chunks 0-7 will not come: {why}"
    assert any(expected in note for note in report["notes"]), report["notes"]
    assert died.exists()
    # The worker sees its process lost when its pool next looks, perhaps after the job.
    wait_for(lambda: "exited with 'signal 9 (SIGKILL)'" in worker.log(), 30, "the loss")
    if moment.startswith("counting"):
        # It acknowledged the chunk rather than run it again: its result was stored.
        wait_for(lambda: "succeeded before the worker was lost" in worker.log(), 30, "it")
        assert worker.log().count(f"[mcpi-{report['job_id']}-1] received") == 1


def test_a_whole_worker_killed_mid_job_is_replaced_and_nothing_lost(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker
) -> None:
    first = start_worker("w1", concurrency=2)
    darts, seed = 1_000_000_000, 4242
    job = Background(cluster_env, "-n", str(darts), "--seed", str(seed), "--chunk-size", "5e7")
    wait_for(lambda: " succeeded in " in first.log(), 60, "a first chunk to finish")
    first.kill()  # SIGKILL to the main process and its pool: unacked chunks return to the queue
    start_worker("w2", concurrency=2)
    status, report, err = job.join(180)
    assert status == 0, err
    assert report is not None and report["hits"] == count_hits(seed, 0, darts)


def test_unreachable_broker_is_reported_quickly(cluster_env: dict[str, str]) -> None:
    env = {**cluster_env, "MCPI_BROKER_URL": f"amqps://mcpi:x@127.0.0.1:{free_port()}/mcpi"}
    began = time.monotonic()
    status, _, err = estimate({**env, "MCPI_SERVICE_WAIT": "0"}, "-n", "1e6")
    assert status == ExitStatus.UNREACHABLE
    assert "cannot reach the broker" in err and err.count("\n") == 1
    assert time.monotonic() - began < 15
    # Waited for, as a restarting broker is: one message, then one line when it stays down.
    began = time.monotonic()
    status, _, err = estimate({**env, "MCPI_SERVICE_WAIT": "3"}, "-n", "1e6")
    waited = time.monotonic() - began
    assert status == ExitStatus.UNREACHABLE and 3 <= waited < 15, (waited, err)
    waiting, error = err.splitlines()
    assert waiting.startswith("mcpi-hub: waiting up to 3s: cannot reach the broker at 127.0.0.1:")
    assert error.startswith("mcpi-hub: error: cannot reach the broker")
    assert error.endswith("still so after waiting 3s (MCPI_SERVICE_WAIT)")


def test_a_hub_waits_for_a_backend_and_workers_that_are_starting(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], rabbitmq: RabbitMQ, cluster_ca, tmp_path: Path
) -> None:
    """A job started while Redis and the workers restart (a host rebooting) waits for
    them, saying so, and then runs as usual."""
    redis = Redis(tmp_path / "redis", ca=cluster_ca)  # its own: not yet started
    worker = Worker(
        "late", rabbitmq.url, redis.url, tmp_path / "late.log", extra_env=rabbitmq.client_env()
    )

    def come_up() -> None:
        time.sleep(2)
        redis.start()
        time.sleep(5)  # past the hub's next tries, which find no worker
        worker.start()

    env = {**cluster_env, "MCPI_RESULT_BACKEND": redis.url, "MCPI_SERVICE_WAIT": "60"}
    services = threading.Thread(target=come_up)
    services.start()
    try:
        status, report, err = estimate(env, "-n", "4e6", "--seed", "8", "--chunk-size", "1e6")
    finally:
        services.join()
        worker.kill()
        redis.stop()
    assert status == 0 and report is not None, err
    assert report["hits"] == count_hits(8, 0, 4 * 10**6)
    assert "waiting up to 60s: cannot reach the result backend at 127.0.0.1:" in err
    assert "waiting up to 60s: no mcpi worker answered" in err


def test_a_backend_that_hangs_up_before_tls_for_a_moment_is_waited_for(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], redis_server: Redis, start_worker
) -> None:
    """Redis stopping or starting takes a connection and closes it before TLS (seen in
    the chaos soak as a hub started): the hub tries again for a few seconds rather than
    report a plain-TCP port at once; one that keeps doing it is still refused."""
    start_worker("w1", concurrency=2)
    with TcpProxy(("127.0.0.1", redis_server.port)) as relay:
        env = {**cluster_env, "MCPI_RESULT_BACKEND": relay.url(redis_server.url)}
        relay.hang_up()
        threading.Timer(1.5, relay.resume).start()
        status, report, err = estimate(env, "-n", "4e6", "--seed", "9", "--chunk-size", "1e6")
        assert status == 0 and report is not None, err
        assert report["hits"] == count_hits(9, 0, 4 * 10**6)
        relay.hang_up()
        began = time.monotonic()
        status, _, err = estimate(env, "-n", "4e6")
        assert status == ExitStatus.UNREACHABLE and "no TLS handshake" in err, err
        assert HANDSHAKE_PATIENCE <= time.monotonic() - began < HANDSHAKE_PATIENCE + 10


def test_silent_broker_is_reported_within_the_connect_timeout(cluster_env: dict[str, str]) -> None:
    with socket.socket() as silent:  # accepts TCP connections, never speaks AMQP
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        env = {
            **cluster_env,
            "MCPI_BROKER_URL": f"amqps://mcpi:x@127.0.0.1:{port}/mcpi",
            "MCPI_CONNECT_TIMEOUT": "2",
        }
        began = time.monotonic()
        status, _, err = estimate(env, "-n", "1e6")
    # Over TLS: the handshake gets no answer.
    assert status == ExitStatus.UNREACHABLE and f"the broker at 127.0.0.1:{port}" in err
    assert time.monotonic() - began < 15


def test_wrong_broker_password_is_reported(cluster_env: dict[str, str], rabbitmq: RabbitMQ) -> None:
    env = {**cluster_env, "MCPI_BROKER_URL": rabbitmq.url.replace(rabbitmq.password, "wrong")}
    began = time.monotonic()
    status, _, err = estimate(env, "-n", "1e6")  # refused: not worth waiting for
    assert status == ExitStatus.UNREACHABLE and "refused user 'mcpi'" in err
    assert time.monotonic() - began < 10 and "waiting" not in err
    assert rabbitmq.password not in err


def test_wrong_redis_password_and_redis_down_are_reported(
    cluster_env: dict[str, str], redis_server: Redis
) -> None:
    env = {
        **cluster_env,
        "MCPI_RESULT_BACKEND": redis_server.url.replace(redis_server.password, "no"),
    }
    began = time.monotonic()
    status, _, err = estimate(env, "-n", "1e6")
    assert status == ExitStatus.UNREACHABLE and "refused the credentials" in err
    env = {
        **cluster_env,
        "MCPI_RESULT_BACKEND": f"rediss://mcpi:x@127.0.0.1:{free_port()}/0",
        "MCPI_SERVICE_WAIT": "0",
    }
    status, _, err = estimate(env, "-n", "1e6")
    assert status == ExitStatus.UNREACHABLE and "cannot reach the result backend" in err
    assert time.monotonic() - began < 20


def test_no_workers_is_reported_after_the_stated_wait(cluster_env: dict[str, str]) -> None:
    began = time.monotonic()
    status, _, err = estimate({**cluster_env, "MCPI_SERVICE_WAIT": "2"}, "-n", "1e6")
    assert status == ExitStatus.NO_WORKERS and "no mcpi worker answered" in err
    assert "still so after waiting 2s" in err and err.count("\n") == 2
    assert time.monotonic() - began < 10


def test_the_preflight_hears_every_worker_the_broker_counts(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker
) -> None:
    # The preflight stops listening once as many workers answered as consume the
    # queue: it must still hear all of them, and know the model each one has.
    from mcpi.cluster.client import ClusterClient
    from mcpi.models.builtin import call
    from mcpi.settings import load_settings

    for name in ("w1", "w2", "w3"):
        start_worker(name, concurrency=1)
    client = ClusterClient(load_settings({}, cluster_env))
    try:
        assert client.queue_state()[1] == 3
        stats, info = client.preflight(call.call({}))
        assert sorted(node.partition("@")[0] for node in stats) == ["w1", "w2", "w3"]
        assert set(info) == set(stats)
    finally:
        client.close()
    status, report, err = estimate(cluster_env, "-n", "1e6", "--seed", "5")
    assert status == 0 and report is not None, err
    assert report["hits"] == count_hits(5, 0, 10**6)


def test_workers_gone_mid_job_is_reported_within_the_grace(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker
) -> None:
    worker = start_worker("w1", concurrency=1)
    env = {**cluster_env, "MCPI_WORKER_GRACE": "5"}
    job = Background(env, "-n", "4e9", "--chunk-size", "5e7")
    wait_for(lambda: " succeeded in " in worker.log(), 60, "a first chunk to finish")
    worker.kill()
    began = time.monotonic()
    status, _, err = job.join(90)
    assert status == ExitStatus.TIMEOUT and "workers are gone" in err
    assert time.monotonic() - began < 40


def test_deadline_is_kept(cluster_env: dict[str, str], start_worker) -> None:  # type: ignore[no-untyped-def]
    start_worker("w1", concurrency=1)
    began = time.monotonic()
    status, _, err = estimate(cluster_env, "-n", "1e11", "--chunk-size", "1e8", "--timeout", "3")
    assert status == ExitStatus.TIMEOUT and "deadline passed" in err
    assert time.monotonic() - began < 15


def test_waves_give_the_count_of_one_chord(cluster_env: dict[str, str], start_worker) -> None:  # type: ignore[no-untyped-def]
    start_worker("w1")
    args = ("-n", "1e7", "--seed", "99", "--chunk-size", "1e6")
    status, waves, err = estimate({**cluster_env, "MCPI_WAVE_CHUNKS": "4"}, *args)
    assert status == 0 and waves is not None, err
    status, one, err = estimate(cluster_env, *args)
    assert status == 0 and one is not None, err
    assert waves["hits"] == one["hits"] == count_hits(99, 0, 10**7)
    assert waves["chunks"] == one["chunks"] == 10


def test_tune_measures_the_workers_and_automatic_chunking_learns_from_it(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker, tmp_path
) -> None:
    start_worker("w1", concurrency=2)
    start_worker("w2", concurrency=1)
    out, err = io.StringIO(), io.StringIO()
    status = main(["tune", "-n", "1e11", "--json"], cluster_env, out, err)
    assert status == 0, err.getvalue()
    tune = json.loads(out.getvalue())
    assert tune["mode"] == "cluster" and tune["slots"] == 3
    [host] = tune["hosts"]
    assert (host["host"], host["slots"], host["source"]) == (socket.gethostname(), 3, "calibrated")
    assert host["darts_per_slot_second"] > 1e6 and 0 < tune["task_overhead_seconds"] < 1
    assert tune["bound_by"] in ("balance", "length") and tune["chunks"] >= 3 * 4
    book = json.loads((tmp_path / "cache" / "mcpi" / "rates.json").read_text())
    [cluster] = book.values()
    assert cluster["hosts"][socket.gethostname()]["slots"] == 3

    # The next job needs no calibration: it chunks from the rates tune recorded.
    status, report, err = estimate(cluster_env, "-n", "3e8", "--seed", "5")
    assert status == 0 and report is not None, err
    assert report["chunking"]["rates"] == ["learnt"]
    assert report["hits"] == count_hits(5, 0, 3 * 10**8)
    assert sum(h["chunks"] for h in report["hosts"]) == report["chunks"] >= 1


def test_automatic_chunking_calibrates_a_cluster_it_does_not_know(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker
) -> None:
    start_worker("w1", concurrency=2)
    status, report, err = estimate(cluster_env, "-n", "1e9", "--seed", "8")
    assert status == 0 and report is not None, err
    assert report["chunking"]["rates"] == ["calibrated"]
    assert report["chunking"]["bound_by"] in ("balance", "overhead")
    assert report["hits"] == count_hits(8, 0, 10**9)


def test_a_stored_result_wakes_the_hubs_wait_and_a_start_or_another_tasks_does_not(
    cluster_env: dict[str, str], redis_server: Redis
) -> None:
    """The hub listens for its chunks' results (Celery's backend announces each state it
    stores): a wait ends when one lands, not when its timeout runs out; another task's
    result, or one of its own chunks starting, does not end it."""
    from mcpi.cluster.app import create_app
    from mcpi.cluster.arrivals import Arrivals, Listeners
    from mcpi.settings import load_settings

    app = create_app(load_settings(env=cluster_env))
    backend = app.backend
    listeners = Listeners(backend)
    arrivals = Arrivals(listeners)
    arrivals.expect(["mcpi-test-a", "mcpi-test-b"])
    assert arrivals.live
    arrivals.wait(0.2)  # takes the subscriptions' confirmations

    def store_later(task_id: str, state: str) -> None:
        time.sleep(1)
        backend.store_result(task_id, {"darts": 1}, state)

    for task_id, state, wakes in (
        ("mcpi-test-other", "SUCCESS", False),
        ("mcpi-test-a", "STARTED", False),
        ("mcpi-test-b", "SUCCESS", True),
    ):
        thread = threading.Thread(target=store_later, args=(task_id, state))
        thread.start()
        started = time.monotonic()
        arrivals.wait(3)
        waited = time.monotonic() - started
        thread.join()
        assert (waited < 2.5) is wakes, (task_id, state, waited)
        assert waited >= 0.9, (task_id, waited)  # the result did not land before

    arrivals.forget(["mcpi-test-a", "mcpi-test-b"])
    arrivals.close()
    assert not arrivals.failed and not arrivals.live
    # The wake-up came from a real stored result, which the hub's poll then reads.
    assert backend.get_task_meta("mcpi-test-b")["status"] == "SUCCESS"
    listeners.close()
    app.close()
