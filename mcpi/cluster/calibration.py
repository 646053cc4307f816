"""Measuring a cluster: each host's per-slot kernel rate and the per-task overhead.

Two short groups of real chunk tasks on every slot: chunks of ``CALIBRATION_DARTS``
(their telemetry gives each host's rate while all slots are busy), then 1-dart chunks
(their throughput gives the overhead one task costs a slot: publish, deliver, store,
collect). Only measurement: the hub decides whether to keep it (its rate book).

For a model job the rates are the model's own (samples per second): its cost per
sample may be anything from nanoseconds to seconds, so its chunks start at one block,
and are made longer (to about ``MODEL_CALIBRATION_SECONDS``) only if one block is too
quick to time well.
"""

from __future__ import annotations

import contextlib
import secrets
import statistics
import time
from collections.abc import Mapping

from mcpi.cluster.chunks import chunk_group, chunk_result, chunk_task_id
from mcpi.cluster.client import REDIS_ERRORS, ClusterClient
from mcpi.cluster.watchdog import Watchdog
from mcpi.core.chunk import ChunkResult
from mcpi.core.job import Job
from mcpi.core.model import ModelCall
from mcpi.core.plan import Plan
from mcpi.core.tuning import Capacity, HostRate
from mcpi.errors import JobTimeout

#: Darts per rate-measuring chunk (~0.1 s on a current core) and such chunks per slot;
#: 1-dart chunks per slot in the larger batch for the overhead.
CALIBRATION_DARTS = 1 << 24
CALIBRATION_CHUNKS_PER_SLOT = 2
OVERHEAD_CHUNKS_PER_SLOT = 8
#: The per-task overhead is taken as at least this (a measurement can undershoot).
MIN_TASK_OVERHEAD = 0.001
#: A model's calibration chunk lasts about this long (one block, if that is longer).
MODEL_CALIBRATION_SECONDS = 0.05
#: The most blocks in a model's calibration chunk.
MAX_CALIBRATION_BLOCKS = 1024


def calibrate(
    client: ClusterClient, slots: Mapping[str, int], model: ModelCall | None = None
) -> Capacity:
    """The capacity of hosts with ``slots`` (per host), measured now (for ``model``).

    A host none of whose chunks it got is given the typical rate, as "assumed".
    """
    total = sum(slots.values())
    with client.connection_errors():
        measured = _rates(client, total) if model is None else _model_rates(client, total, model)
        overhead = _overhead(client, total)
    typical = statistics.median(measured.values())
    hosts = [
        HostRate(host, n, measured.get(host, typical), _source(host, measured))
        for host, n in slots.items()
    ]
    return Capacity.of(hosts, overhead)


def _rates(client: ClusterClient, slots: int) -> dict[str, float]:
    chunks = slots * CALIBRATION_CHUNKS_PER_SLOT
    return _per_host(_run_group(client, Plan(chunks * CALIBRATION_DARTS, CALIBRATION_DARTS)))


def _model_rates(client: ClusterClient, slots: int, model: ModelCall) -> dict[str, float]:
    """Each host's samples/s of ``model``: one block per chunk, then longer chunks if quick."""
    chunks = slots * CALIBRATION_CHUNKS_PER_SLOT
    blocks = 1
    while True:
        size = blocks * model.block
        results = _run_group(client, Plan(chunks * size, size), model)
        seconds = statistics.median(max(r.telemetry.seconds, 1e-9) for r in results)
        if seconds >= MODEL_CALIBRATION_SECONDS / 4 or blocks >= MAX_CALIBRATION_BLOCKS:
            break
        scaled = int(blocks * MODEL_CALIBRATION_SECONDS / seconds)
        blocks = min(MAX_CALIBRATION_BLOCKS, max(2, scaled))
    return _per_host(results)


def _per_host(results: list[ChunkResult]) -> dict[str, float]:
    """Each host's median per-slot rate (darts or samples per second) in ``results``."""
    per_host: dict[str, list[float]] = {}
    for result in results:
        seconds = max(result.telemetry.seconds, 1e-9)
        per_host.setdefault(result.telemetry.host, []).append(result.chunk.darts / seconds)
    return {host: statistics.median(rates) for host, rates in per_host.items()}


def _overhead(client: ClusterClient, slots: int) -> float:
    """Slot-seconds one more task costs: the slope between two batches of 1-dart chunks.

    The slope, not one batch's average, so that the fixed latency of any job
    (first delivery, last poll) is not mistaken for a per-task cost.
    """
    small, large = slots, slots * OVERHEAD_CHUNKS_PER_SLOT
    walls = []
    for chunks in (small, large):
        began = time.monotonic()
        _run_group(client, Plan(chunks, 1))
        walls.append(time.monotonic() - began)
    per_task = (walls[1] - walls[0]) / (large - small)
    return max(MIN_TASK_OVERHEAD, per_task * slots)


def _run_group(
    client: ClusterClient, plan: Plan, model: ModelCall | None = None
) -> list[ChunkResult]:
    """Compute every chunk of a throw-away job of ``plan`` on the workers; no chord."""
    job = Job(
        id="calibrate-" + secrets.token_hex(6), seed=secrets.randbits(64), plan=plan, model=model
    )
    ids = {chunk_task_id(job.id, c.index): c.index for c in plan.chunks()}
    backend = client.results
    chunk_group(client.app, job, ids).apply_async()
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
