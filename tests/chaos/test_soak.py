"""A seeded chaos soak: many jobs of every kind while random, overlapping faults hit a
private TLS cluster; every job must end with the fault-free answer.

The nemesis (:mod:`mcpi.testing.chaos`) draws a fault every few seconds from the seed,
up to two at once: pool processes and whole workers SIGKILLed or SIGSTOPped, Redis
(losing its data) and RabbitMQ restarted, the hub SIGKILLed and its job resumed with
``--resume`` as a user would, a worker cut off the network and healed, or all its
connections reset (each worker reaches the broker and Redis through relays of its own,
:mod:`mcpi.testing.proxy`). The workload runs π, model, precision, randomized QMC and
sweep jobs one after another through the CLI. Afterwards, everything healed: each job's
answer equals the same job's on the local pool, run before the soak with no fault
(chunk for chunk: none lost, none counted twice); the queue and the results in Redis
are empty; each job took no longer than its bound; no process is left behind.

A failure prints the seed and the schedule: ``MCPI_CHAOS_SEEDS=S pytest tests/chaos``
replays it. ``MCPI_CHAOS_SECONDS`` sets how long each seed's faults last (the release
soak: ``MCPI_CHAOS_SEEDS=1-20 MCPI_CHAOS_SECONDS=180``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mcpi.errors import ExitStatus
from mcpi.testing.chaos import Nemesis, schedule
from mcpi.testing.proxy import TcpProxy
from mcpi.testing.servers import Sandbox, Worker, wait_for
from tests.chaos.summary import SOAKED
from tests.helpers import hub_json

pytestmark = pytest.mark.chaos


def seeds() -> list[int]:
    text = os.environ.get("MCPI_CHAOS_SEEDS", "1,2")
    found: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        found += range(int(low), int(high or low) + 1)
    return found


SECONDS = float(os.environ.get("MCPI_CHAOS_SECONDS", "45"))
WORKERS = 3

#: The workload: each job's arguments (its seed added), and the fields of its JSON
#: report that are its answer.
JOBS: list[tuple[list[str], tuple[str, ...]]] = [
    (["estimate", "-n", "8e8", "--chunk-size", "4e7"], ("hits", "darts")),
    (["run", "call", "-n", "3e6", "--chunk-size", "1e5"], ("samples", "outputs")),
    (["run", "call", "--precision", "0.02", "--max-samples", "1e7"], ("samples", "outputs")),
    (
        ["run", "ishigami", "--sampler", "rqmc", "-n", "262144", "--chunk-size", "8192"],
        ("samples", "outputs"),
    ),
    (["run", "call", "--sweep", "K=90,100,110", "-n", "1e6"], ("jobs",)),
]


def answer(report: dict[str, Any], fields: tuple[str, ...]) -> Any:
    """What must not change whatever the faults: the fields, without wall times and hosts."""
    if "jobs" in fields:
        return [answer(job, ("samples", "outputs", "params")) for job in report["jobs"]]
    return {f: report.get(f) for f in fields}


class Workload:
    """Runs :data:`JOBS` through ``mcpi-hub`` processes; the nemesis may kill the hub."""

    def __init__(self, env: dict[str, str], seed: int) -> None:
        self.env = env
        self.seed = seed
        self.hub: subprocess.Popen[str] | None = None
        self.killed = 0
        self.results: list[tuple[list[str], dict[str, Any], float]] = []
        self._lock = threading.Lock()

    def kill_hub(self) -> str:
        with self._lock:
            if self.hub is None or self.hub.poll() is not None:
                return "no hub running"
            self.hub.send_signal(signal.SIGKILL)
            self.killed += 1
            return f"SIGKILL hub {self.hub.pid}"

    def _hub(self, args: list[str]) -> tuple[int, str, str]:
        with self._lock:
            self.hub = subprocess.Popen(
                [sys.executable, "-m", "mcpi", *args, "--json", "--no-progress"],
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        out, err = self.hub.communicate(timeout=900)
        return self.hub.returncode, out, err

    def run(self, until: float) -> None:
        """Jobs one after another until ``until`` (monotonic), each at least once."""
        k = 0
        while k < len(JOBS) or time.monotonic() < until:
            args = [*JOBS[k % len(JOBS)][0], "--seed", str(1000 * self.seed + k)]
            began = time.monotonic()
            status, out, err = self._hub(args)
            while status == -signal.SIGKILL:  # killed by the nemesis: resume, as a user would
                if "--sweep" not in args:
                    resume = [args[0], "--resume", self._newest_job()]
                    status, out, err = self._hub(resume)
                    if status != ExitStatus.USAGE or "finished already" not in err:
                        continue
                # A sweep, or a job that finished (or never started) before the kill:
                # run again, as a user would; the same seed gives the same answer.
                status, out, err = self._hub(args)
            assert status == 0, f"{args}: exit {status}: {err.strip()}"
            self.results.append((args, json.loads(out), time.monotonic() - began))
            k += 1

    def _newest_job(self) -> str:
        status, records, err = hub_json("jobs", self.env)
        assert status == 0 and records, err
        return str(records[0]["id"])


@dataclass
class Cluster:
    box: Sandbox
    #: Each worker's relays to the broker and to Redis.
    proxies: list[list[TcpProxy]]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    # The relays close last: the workers stop first, through them.
    with contextlib.ExitStack() as relays, Sandbox(tmp_path, workers=0) as box:
        proxies = []
        for n in range(1, WORKERS + 1):
            broker = relays.enter_context(TcpProxy(("127.0.0.1", box.rabbitmq.port)))
            backend = relays.enter_context(TcpProxy(("127.0.0.1", box.redis.port)))
            worker = Worker(
                f"w{n}", broker.url(box.rabbitmq.url), backend.url(box.redis.url),
                tmp_path / f"w{n}.log", concurrency=2, extra_env=box.rabbitmq.client_env(),
            )  # fmt: skip
            box.workers.append(worker)
            worker.start()
            proxies.append([broker, backend])
        yield Cluster(box, proxies)


@pytest.mark.parametrize("seed", seeds())
def test_every_job_ends_exact_under_random_overlapping_faults(
    seed: int, cluster: Cluster, tmp_path: Path
) -> None:
    box = cluster.box
    broker, redis, workers = box.rabbitmq, box.redis, box.workers
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCPI_")}
    env.update(
        **box.env(),
        MCPI_CACHE_DIR=str(tmp_path / "cache"),
        XDG_CONFIG_HOME=str(tmp_path / "no-config"),
        # Outages last seconds here: the hub waits them out, as a user's would.
        MCPI_WORKER_GRACE="120",
        MCPI_SERVICE_WAIT="120",
        MCPI_DEBUG="2",  # an error shows its traceback, and the one of the error behind it
    )
    oracle: dict[tuple[str, ...], Any] = {}

    def fault_free(args: list[str], fields: tuple[str, ...]) -> Any:
        """The job's answer on the local pool with no fault (computed once)."""
        if tuple(args) not in oracle:
            status, report, err = hub_json(args[0], env, *args[1:], "--local")
            assert status == 0 and report is not None, err
            oracle[tuple(args)] = answer(report, fields)
        return oracle[tuple(args)]

    faults = schedule(seed, SECONDS, WORKERS, interval=4.0)
    # A job ends within a minute of its own plus every fault's duration and recovery
    # (a restart's 10 s), however the faults fall on it.
    bound = 60 + sum(f.duration + 10 for f in faults)
    workload = Workload(env, seed)
    nemesis = Nemesis(
        faults, workers, redis, broker, workload.kill_hub, proxies=cluster.proxies
    ).start()
    replay = f"seed {seed} (replay: MCPI_CHAOS_SEEDS={seed}); faults:\n" + "\n".join(
        map(str, faults)
    )
    try:
        workload.run(until=time.monotonic() + SECONDS)
    except BaseException as exc:
        nemesis.heal()
        log = "\n".join(nemesis.log)
        raise AssertionError(f"{exc}\n{replay}\nwhat the nemesis did:\n{log}") from exc
    nemesis.heal()
    done = "what the nemesis did:\n" + "\n".join(nemesis.log)

    assert len(workload.results) >= len(JOBS)
    for args, report, seconds in workload.results:
        fields = next(f for a, f in JOBS if args[: len(a)] == a)
        want = fault_free(args, fields)
        context = f"{args}\n{replay}\n{done}"
        assert answer(report, fields) == want, f"not the fault-free answer: {context}"
        assert seconds < bound, f"{seconds:.0f}s, beyond the bound of {bound:.0f}s: {context}"

    # Quiescence: nothing queued, no result left in Redis, every worker back.
    def queue_empty() -> bool:
        connection = broker.connection()
        connection.connect()
        try:
            return connection.channel().queue_declare("mcpi", passive=True).message_count == 0
        finally:
            connection.collect()

    wait_for(queue_empty, 120, f"the queue to drain\n{replay}\n{done}")
    # Redis: every finished job's mark deleted by its hub (its results expire within
    # two minutes: tests/cluster/test_integration.py); what else is left -- a copy that
    # finished after its job (it was paused), a run whose hub was killed and which was
    # run again, Celery's chord claims -- expires by itself.
    finished = {r["job_id"] for _, r, _ in workload.results if "job_id" in r}
    finished |= {j["job_id"] for _, r, _ in workload.results for j in r.get("jobs", [])}
    client = redis.client()
    try:
        left = {k.decode(): client.ttl(k) for k in client.scan_iter("mcpi:*")}
    finally:
        client.close()
    marks = [k for k in left if k.removeprefix("mcpi:job-") in finished]
    assert not marks, f"finished jobs' marks left: {marks}\n{replay}\n{done}"
    forever = {k: ttl for k, ttl in left.items() if not 0 < ttl <= 7 * 24 * 3600}
    assert not forever, f"keys that never expire: {forever}\n{replay}\n{done}"
    assert all(w.process is not None and w.process.poll() is None for w in workers)
    kinds = Counter(f.kind for f in nemesis.applied)
    longest = max(seconds for _, _, seconds in workload.results)
    SOAKED.append(
        f"seed {seed}: {len(nemesis.applied)} faults in {SECONDS:.0f} s "
        f"({', '.join(f'{n} {kind}' for kind, n in sorted(kinds.items()))}), "
        f"{len(faults) - len(nemesis.applied)} skipped or not applicable; "
        f"{len(workload.results)} jobs, all exact, the longest {longest:.0f} s "
        f"(bound {bound:.0f} s)"
    )
