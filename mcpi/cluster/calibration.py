"""Measuring a cluster: each host's per-slot rate of a model and the per-task overhead.

Short groups of real chunk tasks on every slot: chunks of the job's model (their
telemetry gives each host's rate, in samples per second, while all slots are busy),
then one-sample chunks of the ``pi`` model (their throughput gives the overhead one task
costs a slot: publish, deliver, store, collect). Only measurement: the hub decides
whether to keep it (its rate book).

A model's cost per sample may be anything from nanoseconds (a dart) to seconds, so its
chunks start at one block, and are made longer, round by round, until one lasts about
``CALIBRATION_SECONDS``.
"""

from __future__ import annotations

import contextlib
import secrets
import statistics
import time
from collections.abc import Mapping

from mcpi.cluster.chunks import chunk_result, chunk_task_id, send_chunks
from mcpi.cluster.client import REDIS_ERRORS, ClusterClient, riding_out
from mcpi.cluster.watchdog import Watchdog
from mcpi.core.chunk import ChunkResult
from mcpi.core.job import Job
from mcpi.core.model import ModelCall
from mcpi.core.plan import Plan
from mcpi.core.tuning import Capacity, HostRate, next_calibration
from mcpi.errors import JobTimeout
from mcpi.models.builtin import pi

#: The tasks that measure the overhead: one dart each.
_DART = pi.call({})

#: Rate-measuring chunks per slot, up to RATE_CHUNKS at most: every chunk delivered costs
#: the cluster some CPU (measured: 3 to 6 ms of a worker's, with the hub's, the broker's
#: and Redis's besides), so a round of one chunk per slot would cost more the more hosts
#: there are (some 10 s at 1,600 slots on one 2-core machine). A host that none of the
#: chunks reach is given the typical rate, as "assumed", until the job's own chunks
#: teach the rate book its own.
CALIBRATION_CHUNKS_PER_SLOT = 1
RATE_CHUNKS = 256
#: The overhead's two batches of 1-sample chunks: the first one per slot, at most
#: OVERHEAD_FIRST; the second that many more, plus 7 per slot up to OVERHEAD_EXTRA.
#: Bounded, not per slot: on a large cluster the slope between them is the hub's and
#: the broker's cost per task, whatever the cluster's size, and measuring it at 1,600
#: slots must not take the 14,400 tasks (half a minute) that 8 per slot would.
OVERHEAD_FIRST = 256
OVERHEAD_EXTRA = 512
#: The per-task overhead is taken as at least this (a measurement can undershoot).
MIN_TASK_OVERHEAD = 0.001
#: A calibration chunk lasts about this long (one block, if that is longer).
CALIBRATION_SECONDS = 0.05
#: The most samples in a calibration chunk (a dart takes about a nanosecond).
MAX_CALIBRATION_SAMPLES = 1 << 26


def calibrate(
    client: ClusterClient,
    slots: Mapping[str, int],
    model: ModelCall,
    task_overhead: float | None = None,
) -> Capacity:
    """The capacity of hosts with ``slots`` (per host) for ``model``, measured now (the
    per-task overhead too, unless ``task_overhead`` gives it).

    A host none of whose chunks it got is given the typical rate, as "assumed".
    """
    total = sum(slots.values())

    def overhead() -> float:
        return _overhead(client, total) if task_overhead is None else task_overhead

    # A broker or backend restarting meanwhile: measure again once both answer.
    measured, overhead_seconds = riding_out(
        lambda: (_rates(client, total, model), overhead()),
        lambda exc: client.wait_for_services(exc, client.settings.worker_grace),
    )
    typical = statistics.median(measured.values())
    hosts = [
        HostRate(host, n, measured.get(host, typical), _source(host, measured))
        for host, n in slots.items()
    ]
    return Capacity.of(hosts, overhead_seconds)


def _rates(client: ClusterClient, slots: int, model: ModelCall) -> dict[str, float]:
    """Each host's samples/s of ``model``: one block per chunk, then longer chunks if quick."""
    chunks = min(slots * CALIBRATION_CHUNKS_PER_SLOT, RATE_CHUNKS)
    most = max(1, MAX_CALIBRATION_SAMPLES // model.block)
    blocks, first = 1, True
    while True:
        size = blocks * model.block
        results = _run_group(client, Plan(chunks * size, size), model)
        seconds = statistics.median(max(r.telemetry.seconds, 1e-9) for r in results)
        grown = next_calibration(blocks, seconds, CALIBRATION_SECONDS, first)
        if grown is None or blocks >= most:
            return _per_host(results)
        blocks, first = min(most, grown), False


def _per_host(results: list[ChunkResult]) -> dict[str, float]:
    """Each host's median per-slot rate (samples per second) in ``results``."""
    per_host: dict[str, list[float]] = {}
    for result in results:
        seconds = max(result.telemetry.seconds, 1e-9)
        per_host.setdefault(result.telemetry.host, []).append(result.chunk.darts / seconds)
    return {host: statistics.median(rates) for host, rates in per_host.items()}


def _overhead(client: ClusterClient, slots: int) -> float:
    """Slot-seconds one more task costs: the slope between two batches of 1-dart chunks
    (of the ``pi`` model: a task whose work is nothing but its overhead).

    The slope, not one batch's average, so that the fixed latency of any job
    (first delivery, last poll) is not mistaken for a per-task cost.
    """
    small = min(slots, OVERHEAD_FIRST)
    large = small + min(7 * slots, OVERHEAD_EXTRA)
    walls = []
    for chunks in (small, large):
        began = time.monotonic()
        _run_group(client, Plan(chunks, 1), _DART)
        walls.append(time.monotonic() - began)
    per_task = (walls[1] - walls[0]) / (large - small)
    return max(MIN_TASK_OVERHEAD, per_task * slots)


def _run_group(client: ClusterClient, plan: Plan, model: ModelCall) -> list[ChunkResult]:
    """Compute every chunk of a throw-away job of ``plan`` on the workers; no chord."""
    job = Job(
        id="calibrate-" + secrets.token_hex(6), seed=secrets.randbits(64), plan=plan, model=model
    )
    ids = {chunk_task_id(job.id, c.index): c.index for c in plan.chunks()}
    backend = client.results
    send_chunks(client, job, ids)
    watchdog = Watchdog(
        time.monotonic() + max(60.0, client.settings.worker_grace),
        counted=str,
        live_workers=client.live_workers,
        grace=client.settings.worker_grace,
    )
    results = []
    try:
        for task_id, meta in backend.get_many(set(ids), interval=0.005, on_interval=watchdog.check):
            results.append(chunk_result(ids[task_id], meta))
    except JobTimeout:
        client.revoke(list(ids))
        raise JobTimeout("the workers did not finish a calibration in time") from None
    finally:
        with contextlib.suppress(*REDIS_ERRORS):
            backend.client.delete(*(backend.get_key_for_task(t) for t in ids))
    return results


def _source(host: str, measured: Mapping[str, float]) -> str:
    # A host whose chunks all went elsewhere during calibration gets the typical rate.
    return "calibrated" if host in measured else "assumed"
