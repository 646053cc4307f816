"""The control plane at scale: jobs on an emulated cluster of 16 to 1,600 slots.

For each size (hosts × slots per host, :class:`mcpi.testing.scale.EmulatedCluster`) a
job of ``ideal`` seconds of work (nap samples, 1 ms each: ideal = samples × 1 ms /
slots) runs twice through the CLI, as a user runs it: **cold** (an empty rate book: the
hub calibrates) and **warm** (the rates it learnt). Reported per size and run:

* **efficiency**: ideal seconds / the whole command's wall seconds;
* the **hub's CPU per chunk** (the command's user + system time / chunks);
* the seconds until **95 % of the slots are busy**: had a chunk of the job (from the
  emulated hosts' logs);
* the most **broker and Redis connections** seen while the job ran (``ss``);
* the **largest message** the job sent, at most (the report's ``largest_message_bytes``:
  a wave's chord callback, which carries the wave's results);
* the chunks, and where the rates came from.

Every job's answer is checked: each of its samples counted once (``duplicates`` 0, all
samples in the report). Issue 31's targets, at the largest size: 95 % of the slots
busy within 10 s, ≥ 0.9 cold and ≥ 0.95 warm; the hub's CPU per chunk growing at most
25 % from the smallest size.
"""

from __future__ import annotations

import datetime
import json
import math
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcpi.testing.scale import EmulatedCluster

#: (hosts, slots per host) from 16 to 1,600 slots.
FULL_SIZES = ((1, 16), (4, 16), (8, 16), (8, 32), (20, 32), (50, 32))
QUICK_SIZES = ((2, 8),)
#: Milliseconds of sleep per nap sample.
NAP_MS = 1.0
SEED = 31


@dataclass(frozen=True)
class Run:
    """One job's measurements."""

    kind: str  # "cold" or "warm"
    wall: float
    ideal: float
    chunks: int
    hub_cpu: float
    rates: list[str]
    broker_connections: int
    redis_connections: int
    #: Seconds from the command's start until 95 % of the slots had a chunk of the job.
    busy95: float
    #: Bytes of the largest message the job sent, at most.
    largest_message: int = 0

    @property
    def efficiency(self) -> float:
        return self.ideal / self.wall

    @property
    def cpu_per_chunk(self) -> float:
        return self.hub_cpu / max(self.chunks, 1)


@dataclass
class Size:
    hosts: int
    slots_per_host: int
    runs: list[Run] = field(default_factory=list)

    @property
    def slots(self) -> int:
        return self.hosts * self.slots_per_host


def measure(
    sizes: tuple[tuple[int, int], ...],
    ideal: float,
    say: Callable[[str], None],
    chunks: int | None = None,
) -> list[Size]:
    """Each size's cold and warm job of ``ideal`` seconds (in ``chunks`` chunks, if given)."""
    found = []
    with (
        tempfile.TemporaryDirectory(prefix="mcpi-scale-") as tmp,
        EmulatedCluster(Path(tmp)) as cluster,
    ):
        for hosts, slots in sizes:
            size = Size(hosts, slots)
            say(f"{size.slots} slots: starting {hosts} emulated host(s) of {slots}")
            cluster.grow(hosts, slots)
            cache = Path(tmp) / f"cache-{size.slots}"
            for kind in ("cold", "warm"):
                run = _job(cluster, cache, size.slots, ideal, kind, chunks)
                say(
                    f"{size.slots} slots, {kind}: {run.efficiency:.2f} of ideal, "
                    f"{run.chunks} chunks, {1000 * run.cpu_per_chunk:.2f} ms hub CPU each"
                )
                size.runs.append(run)
            cluster.shrink()
            found.append(size)
    return found


def _job(
    cluster: EmulatedCluster,
    cache: Path,
    slots: int,
    ideal: float,
    kind: str,
    chunks: int | None = None,
) -> Run:
    samples = round(ideal * slots * 1000 / NAP_MS)
    argv = [sys.executable, "-m", "mcpi", "run", "nap", "-n", str(samples)]
    if chunks is not None:
        argv += ["--chunk-size", str(max(1, samples // chunks))]
    argv += ["--param", f"ms={NAP_MS}", "--seed", str(SEED), "--json", "--no-progress"]
    peak = [0, 0]
    done_event = threading.Event()

    def watch() -> None:
        while not done_event.wait(0.5):
            broker, redis = cluster.connections()
            peak[0], peak[1] = max(peak[0], broker), max(peak[1], redis)

    watcher = threading.Thread(target=watch, daemon=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = datetime.datetime.now()
    began = time.perf_counter()
    watcher.start()
    try:
        done = subprocess.run(
            argv,
            env=cluster.hub_env(cache),
            capture_output=True,
            text=True,
            timeout=20 * ideal + 600,
            check=False,
        )
    finally:
        done_event.set()
        watcher.join()
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"the {kind} job on {slots} slots failed: {done.stderr.strip()}")
    report: dict[str, Any] = json.loads(done.stdout)
    if report["samples"] != samples or report.get("duplicates", 0) != 0:
        raise RuntimeError(f"the {kind} job on {slots} slots did not count every sample once")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(
        kind,
        wall,
        ideal,
        int(report["chunks"]),
        cpu,
        list((report.get("chunking") or {"rates": ["chunk size given"]})["rates"]),
        broker_connections=peak[0],
        redis_connections=peak[1],
        busy95=_busy(cluster, str(report["job_id"]), slots, started),
        largest_message=int(report.get("largest_message_bytes") or 0),
    )


#: A worker's log line for a chunk it received: its time, and the task id.
RECEIVED = re.compile(r"^\[(\S+ \S+): INFO/MainProcess\] Task mcpi\.count_chunk\[(\S+)\] received")


def _busy(cluster: EmulatedCluster, job_id: str, slots: int, started: datetime.datetime) -> float:
    """Seconds from ``started`` until 95 % of ``slots`` had received a chunk of the job
    (from the emulated hosts' logs: with one chunk prefetched per slot, received is
    about when it starts); infinity if they never did."""
    times = []
    for worker in cluster.workers:
        for line in worker.log().splitlines():
            found = RECEIVED.match(line)
            if found and found.group(2).startswith(f"mcpi-{job_id}-"):
                at = datetime.datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f")
                times.append((at - started).total_seconds())
    times.sort()
    needed = math.ceil(0.95 * slots)
    return times[needed - 1] if len(times) >= needed else math.inf


def as_lines(sizes: list[Size]) -> list[str]:
    header = (
        f"{'slots':>6} {'hosts':>5} {'run':>4} {'efficiency':>10} {'wall s':>8} {'chunks':>7} "
        f"{'hub CPU/chunk':>13} {'95% busy s':>10} {'broker conns':>12} {'Redis conns':>11} "
        f"{'largest msg':>11}  rates"
    )
    lines = [header]
    for size in sizes:
        for run in size.runs:
            lines.append(
                f"{size.slots:>6} {size.hosts:>5} {run.kind:>4} {run.efficiency:>10.3f} "
                f"{run.wall:>8.1f} {run.chunks:>7} {1000 * run.cpu_per_chunk:>10.2f} ms "
                f"{run.busy95:>10.1f} "
                f"{run.broker_connections:>12} {run.redis_connections:>11} "
                f"{run.largest_message / 1024:>8.0f} KB  {','.join(run.rates)}"
            )
    lines += [f"target: {t}" for t in targets(sizes)]
    return lines


def targets(sizes: list[Size]) -> list[str]:
    """Issue 31's targets, judged on these sizes (the full sweep ends at 1,600 slots)."""
    if not sizes:
        return []
    largest = sizes[-1]
    cold, warm = (next(r for r in largest.runs if r.kind == k) for k in ("cold", "warm"))
    # Growth from the smallest size to the largest (the smallest carries the command's
    # start-up over fewer chunks, so a flat cost per chunk shows as a fall).
    per_chunk = [r.cpu_per_chunk for s in sizes for r in s.runs if r.kind == "warm"]
    spread = per_chunk[-1] / per_chunk[0] - 1 if per_chunk[0] > 0 else float("inf")

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    busy = max(r.busy95 for r in largest.runs)
    message = max(r.largest_message for s in sizes for r in s.runs)
    return [
        f"95% of {largest.slots} slots busy within {busy:.1f} s (<= 10 s) " + verdict(busy <= 10),
        f"cold at {largest.slots} slots: {cold.efficiency:.2f} of ideal (>= 0.9) "
        + verdict(cold.efficiency >= 0.9),
        f"warm at {largest.slots} slots: {warm.efficiency:.2f} of ideal (>= 0.95) "
        + verdict(warm.efficiency >= 0.95),
        f"hub CPU per chunk, warm, largest size against smallest: {100 * spread:+.0f}% (<= +25%) "
        + verdict(spread <= 0.25),
        f"largest message: {message / 1024:.0f} KB (<= 1024 KB) " + verdict(message <= 2**20),
    ]


def as_json(sizes: list[Size]) -> list[dict[str, Any]]:
    return [
        {
            "hosts": s.hosts,
            "slots": s.slots,
            "runs": [
                {
                    "kind": r.kind,
                    "efficiency": r.efficiency,
                    "wall_seconds": r.wall,
                    "chunks": r.chunks,
                    "hub_cpu_per_chunk_seconds": r.cpu_per_chunk,
                    "seconds_to_95_percent_busy": r.busy95,
                    "broker_connections": r.broker_connections,
                    "redis_connections": r.redis_connections,
                    "largest_message_bytes": r.largest_message,
                    "rates": r.rates,
                }
                for r in s.runs
            ],
        }
        for s in sizes
    ]
