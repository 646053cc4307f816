"""Stragglers on real RabbitMQ, Redis and workers: backups finish the job, and audit it.

A frozen pool process keeps its chunk unacknowledged while its worker's main process
answers pings, so nothing Celery does redelivers it: the hub's backup copy does. A
worker whose kernel returns another count is caught when both copies of a chunk come
back. Faults are injected from outside the product, by a ``sitecustomize`` on the
worker's ``PYTHONPATH`` that wraps the kernel (or hooks the task's start).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mcpi.core.kernel import count_hits
from mcpi.errors import ExitStatus
from mcpi.hub.live import read_live
from tests.helpers import estimate, run_model

pytestmark = pytest.mark.integration

#: The pool process stops itself (SIGSTOP, as a user's ``kill -STOP`` would) the first
#: time it counts a chunk of the job's size: inside the kernel, after the worker has
#: stored the chunk's STARTED state, or just before the task starts.
FREEZER = """
import os, signal
import mcpi.core.kernel as kernel

SIZE = int(os.environ["MCPI_TEST_CHUNK_DARTS"])
_count = kernel.count_hits

def count_hits(seed, start, stop, *args):
    if stop - start == SIZE:
        os.kill(os.getpid(), signal.SIGSTOP)
    return _count(seed, start, stop, *args)

if os.environ["MCPI_TEST_FREEZE"] == "kernel":
    kernel.count_hits = count_hits
else:
    from celery.signals import task_prerun

    @task_prerun.connect
    def _freeze(task=None, args=None, **_):
        if task is not None and task.name == "mcpi.count_chunk":
            chunk = args[1]
            if chunk[2] - chunk[1] == SIZE:
                os.kill(os.getpid(), signal.SIGSTOP)
"""

#: The first chunk of the job's size this worker counts takes a while and comes out
#: one hit too many; every other count is honest.
LIAR = """
import os, time
import mcpi.core.kernel as kernel

SIZE = int(os.environ["MCPI_TEST_CHUNK_DARTS"])
_count = kernel.count_hits
_lied = []

def count_hits(seed, start, stop, *args):
    hits = _count(seed, start, stop, *args)
    if stop - start == SIZE and not _lied:
        _lied.append(start)
        time.sleep(float(os.environ["MCPI_TEST_LIE_SECONDS"]))
        return hits + 1
    return hits

kernel.count_hits = count_hits
"""


def inject(tmp_path: Path, name: str, code: str) -> str:
    directory = tmp_path / name
    directory.mkdir()
    (directory / "sitecustomize.py").write_text(code)
    return str(directory)


@pytest.mark.parametrize("where", ["kernel", "prerun"])
def test_a_frozen_pool_process_does_not_hold_the_job(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker, tmp_path: Path, where: str
) -> None:
    darts, chunk = 10**9, 25 * 10**6
    start_worker("steady", concurrency=1)
    start_worker(
        "frozen",
        concurrency=1,
        PYTHONPATH=inject(tmp_path, "freeze", FREEZER),
        MCPI_TEST_CHUNK_DARTS=str(chunk),
        MCPI_TEST_FREEZE=where,
    )
    began = time.monotonic()
    status, report, err = estimate(
        cluster_env, "-n", str(darts), "--chunk-size", str(chunk), "--seed", "11",
        "--timeout", "120",
    )  # fmt: skip
    elapsed = time.monotonic() - began
    assert status == 0, err
    assert report is not None
    began = time.monotonic()
    expected = count_hits(11, 0, darts)
    one_slot = time.monotonic() - began
    assert report["hits"] == expected
    # The bound: twice the time one slot alone needs for the whole job, plus 5 s for
    # the hub's start, calibration and the backup's wait (the chunk must be 2x + 0.5 s
    # overdue, and the queue drained). It used to wait for RabbitMQ's consumer timeout.
    assert elapsed < 2 * one_slot + 5, (elapsed, one_slot)
    notes = " ".join(report["notes"])
    assert "backups: 1 copy(ies) of 1 overdue chunk(s)" in notes, notes
    assert "1 finished first" in notes, notes
    # What a dashboard reads of the job: the backup sent, every chunk counted, its notes.
    live = read_live(tmp_path / "cache" / "mcpi" / "jobs" / f"{report['job_id']}.live")
    assert live is not None and live["ended"] and live["notes"] == report["notes"]
    assert (live["backups"], live["counted"], live["chunks"], live["out"]) == (1, 40, 40, 0)


def test_a_frozen_pool_process_does_not_hold_a_model_job(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker, tmp_path: Path
) -> None:
    samples, chunk = 64 * 4096 * 16, 4096 * 16
    start_worker("steady", concurrency=1)
    start_worker(
        "frozen",
        concurrency=1,
        PYTHONPATH=inject(tmp_path, "freeze", FREEZER),
        MCPI_TEST_CHUNK_DARTS=str(chunk),
        MCPI_TEST_FREEZE="prerun",
    )
    args = ["call", "-n", str(samples), "--chunk-size", str(chunk), "--seed", "8"]
    status, cluster, err = run_model(cluster_env, *args, "--timeout", "120")
    assert status == 0 and cluster is not None, err
    assert "1 finished first" in " ".join(cluster["notes"]), cluster["notes"]
    status, local, err = run_model(cluster_env, *args, "--local")
    assert status == 0 and local is not None, err
    assert cluster["outputs"] == local["outputs"]


def test_a_worker_whose_copy_of_a_chunk_differs_is_named_and_the_job_fails(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker, tmp_path: Path
) -> None:
    chunk = 10**6
    start_worker("honest", concurrency=1)
    start_worker(
        "liar",
        concurrency=1,
        PYTHONPATH=inject(tmp_path, "lie", LIAR),
        MCPI_TEST_CHUNK_DARTS=str(chunk),
        MCPI_TEST_LIE_SECONDS="2.5",
    )
    # Small waves: the liar's slow chunk holds its wave, the queue drains behind it, a
    # backup counts the chunk honestly, and the job goes on long enough for the
    # liar's own copy to come back and be compared.
    env = {**cluster_env, "MCPI_WAVE_CHUNKS": "4"}
    status, _, err = estimate(
        env, "-n", str(600 * chunk), "--chunk-size", str(chunk), "--timeout", "120"
    )
    assert status == ExitStatus.JOB_FAILED, err
    assert "gave two different results" in err and "liar@" in err, err
    assert err.count("\n") == 1, err
