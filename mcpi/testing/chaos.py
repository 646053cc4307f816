"""A seeded nemesis: random, overlapping faults against a private cluster, replayable.

The schedule is a pure function of the seed (Jepsen's nemesis, FoundationDB's seeded
simulations): one fault every ``interval`` seconds on average (uniform over 0.5–1.5 of
it), each lasting a drawn time, at most ``overlap`` at once. A fault is applied in a
thread of its own and healed at its end; :meth:`Nemesis.heal` heals whatever is still
broken. What was done, and when, is kept in :attr:`Nemesis.log`, for a failure's
message; the same seed replays the same schedule (the timing of what it hits -- which
chunk a SIGKILL lands in -- is the machine's).

The faults (:data:`KINDS`):

* ``kill-pool`` -- SIGKILL a worker's pool process (Celery starts another);
* ``kill-worker`` -- SIGKILL a whole worker, then start it again after the duration;
* ``pause-pool`` -- SIGSTOP a pool process for the duration, then SIGCONT;
* ``pause-worker`` -- SIGSTOP a whole worker (it stops answering), then SIGCONT;
* ``restart-redis`` -- stop Redis (it keeps no data) and start it after the duration;
* ``restart-broker`` -- stop RabbitMQ and start it again;
* ``kill-hub`` -- ask the workload to SIGKILL its hub and resume the job, as a user would;
* ``cut-worker`` -- cut a worker off the network (its relays to the broker and Redis,
  :class:`~mcpi.testing.proxy.TcpProxy`, stalled: a black hole both ways), then heal;
* ``reset-worker`` -- tear every connection of a worker at once with TCP resets.

The network faults need the workers behind relays (``proxies``); without them they are
not drawn (:data:`LOCAL_KINDS`).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mcpi.testing.proxy import TcpProxy
from mcpi.testing.servers import RabbitMQ, Redis, Worker

#: The faults that need no relay between the workers and the services.
LOCAL_KINDS = (
    "kill-pool",
    "kill-worker",
    "pause-pool",
    "pause-worker",
    "restart-redis",
    "restart-broker",
    "kill-hub",
)
KINDS = (*LOCAL_KINDS, "cut-worker", "reset-worker")

#: How long each kind of fault lasts, in seconds (drawn uniformly).
DURATIONS = {
    "kill-pool": (0.0, 0.0),
    "kill-worker": (1.0, 5.0),
    "pause-pool": (1.0, 8.0),
    "pause-worker": (1.0, 8.0),
    "restart-redis": (0.5, 3.0),
    "restart-broker": (0.0, 2.0),
    "kill-hub": (0.0, 0.0),
    "cut-worker": (1.0, 8.0),
    "reset-worker": (0.0, 0.0),
}


@dataclass(frozen=True)
class Fault:
    at: float  # seconds after the nemesis starts
    kind: str
    target: int  # which worker, for the worker faults
    duration: float

    def __str__(self) -> str:
        return f"{self.at:6.1f}s {self.kind} (worker {self.target}, {self.duration:.1f}s)"


def schedule(
    seed: int, seconds: float, workers: int, interval: float, kinds: Sequence[str] = KINDS
) -> list[Fault]:
    """The faults of a soak of ``seconds``: a pure function of its arguments."""
    rng = random.Random(seed)
    faults: list[Fault] = []
    at = 0.0
    while True:
        at += interval * rng.uniform(0.5, 1.5)
        if at >= seconds:
            return faults
        kind = rng.choice(list(kinds))
        low, high = DURATIONS[kind]
        faults.append(Fault(round(at, 2), kind, rng.randrange(workers), rng.uniform(low, high)))


class Nemesis:
    """Applies a schedule of faults to ``workers``, ``redis`` and ``broker``.

    ``kill_hub`` is the workload's: called for a ``kill-hub`` fault. ``proxies`` are
    each worker's relays to the services, for the network faults. At most ``overlap``
    faults are under way at once; one drawn while as many are under way is skipped (and
    logged so).
    """

    def __init__(
        self,
        faults: Sequence[Fault],
        workers: Sequence[Worker],
        redis: Redis,
        broker: RabbitMQ,
        kill_hub: Callable[[], str],
        overlap: int = 2,
        proxies: Sequence[Sequence[TcpProxy]] = (),
    ) -> None:
        self.faults = list(faults)
        self.proxies = proxies
        self.workers = workers
        self.redis = redis
        self.broker = broker
        self.kill_hub = kill_hub
        self.overlap = overlap
        self.log: list[str] = []
        #: The faults applied (and healed, for those that last), in the order they ended.
        self.applied: list[Fault] = []
        self._lock = threading.Lock()
        self._active: list[threading.Thread] = []
        self._stop = threading.Event()
        self._runner = threading.Thread(target=self._run, daemon=True)
        # Each service's faults one at a time: two restarts of Redis must not interleave.
        self._service_locks = {"Redis": threading.Lock(), "RabbitMQ": threading.Lock()}
        self._worker_locks = [threading.Lock() for _ in workers]

    def start(self) -> Nemesis:
        self._began = time.monotonic()
        self._runner.start()
        return self

    def stop(self) -> None:
        """Stop drawing faults and wait for those under way to heal."""
        self._stop.set()
        self._runner.join()
        for thread in list(self._active):
            thread.join()

    def heal(self) -> None:
        """Everything up and running again (after :meth:`stop`)."""
        self.stop()
        for relays in self.proxies:
            for relay in relays:
                relay.resume()
        for worker in self.workers:
            if worker.process is None or worker.process.poll() is not None:
                worker.start()
            else:
                _signal_group(worker, signal.SIGCONT)
        if self.redis.process is None:
            self.redis.start()
        if self.broker.process is None:
            self.broker.start()

    def _note(self, text: str) -> None:
        with self._lock:
            self.log.append(f"{time.monotonic() - self._began:6.1f}s {text}")

    def _run(self) -> None:
        for fault in self.faults:
            if self._stop.wait(max(0.0, self._began + fault.at - time.monotonic())):
                return
            self._active = [t for t in self._active if t.is_alive()]
            if len(self._active) >= self.overlap:
                self._note(f"skipped {fault} ({self.overlap} faults under way)")
                continue
            thread = threading.Thread(target=self._apply, args=(fault,), daemon=True)
            self._active.append(thread)
            thread.start()

    def _apply(self, fault: Fault) -> None:
        try:
            getattr(self, "_" + fault.kind.replace("-", "_"))(fault)
        except Exception as exc:  # noqa: BLE001 - the soak's checks judge the outcome
            self._note(f"{fault}: could not apply: {type(exc).__name__}: {exc}")
        else:
            with self._lock:
                self.applied.append(fault)

    def _kill_pool(self, fault: Fault) -> None:
        worker = self.workers[fault.target]
        with self._worker_locks[fault.target]:
            pids = _pool_pids(worker)
            if pids:
                os.kill(pids[0], signal.SIGKILL)
            self._note(f"{fault}: SIGKILL pool process {pids[:1]}")

    def _for_a_while(
        self, fault: Fault, lock: threading.Lock, harm: Callable[[], str], heal: Callable[[], str]
    ) -> None:
        """``harm``, for the fault's duration, then ``heal`` (each says what it did)."""
        with lock:
            self._note(f"{fault}: {harm()}")
            time.sleep(fault.duration)
            self._note(f"{fault}: {heal()}")

    def _kill_worker(self, fault: Fault) -> None:
        worker = self.workers[fault.target]

        def kill() -> str:
            worker.kill()
            return "SIGKILL worker"

        def start() -> str:
            worker.start(timeout=120)
            return "worker started again"

        self._for_a_while(fault, self._worker_locks[fault.target], kill, start)

    def _pause_pool(self, fault: Fault) -> None:
        worker = self.workers[fault.target]
        pids: list[int] = []

        def signal_all(signum: int) -> str:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signum)
            return f"{signal.Signals(signum).name} pool process {pids}"

        def stop() -> str:
            pids[:] = _pool_pids(worker)[:1]  # under the worker's lock: not one killed since
            return signal_all(signal.SIGSTOP)

        lock = self._worker_locks[fault.target]
        self._for_a_while(fault, lock, stop, lambda: signal_all(signal.SIGCONT))

    def _pause_worker(self, fault: Fault) -> None:
        worker = self.workers[fault.target]

        def signal_all(signum: int) -> str:
            _signal_group(worker, signum)
            return f"{signal.Signals(signum).name} worker"

        lock = self._worker_locks[fault.target]
        self._for_a_while(
            fault, lock, lambda: signal_all(signal.SIGSTOP), lambda: signal_all(signal.SIGCONT)
        )

    def _restart(self, fault: Fault, service: RabbitMQ | Redis, name: str) -> None:
        def stop() -> str:
            service.stop()
            return f"{name} stopped" + (" (its data gone)" if isinstance(service, Redis) else "")

        def start() -> str:
            service.start()
            return f"{name} started"

        self._for_a_while(fault, self._service_locks[name], stop, start)

    def _restart_redis(self, fault: Fault) -> None:
        self._restart(fault, self.redis, "Redis")

    def _restart_broker(self, fault: Fault) -> None:
        self._restart(fault, self.broker, "RabbitMQ")

    def _kill_hub(self, fault: Fault) -> None:
        self._note(f"{fault}: {self.kill_hub()}")

    def _cut_worker(self, fault: Fault) -> None:
        relays = self.proxies[fault.target]

        def cut() -> str:
            for relay in relays:
                relay.stall()
            return "cut off the network"

        def heal() -> str:
            for relay in relays:
                relay.resume()
            return "network healed"

        self._for_a_while(fault, self._worker_locks[fault.target], cut, heal)

    def _reset_worker(self, fault: Fault) -> None:
        relays = self.proxies[fault.target]
        with self._worker_locks[fault.target]:
            links = sum(relay.links for relay in relays)
            for relay in relays:
                relay.reset()
            self._note(f"{fault}: {links} connection(s) reset")


def _pool_pids(worker: Worker) -> list[int]:
    if worker.process is None or worker.process.poll() is not None:
        return []
    return worker.pool_pids()


def _signal_group(worker: Worker, signum: int) -> None:
    if worker.process is not None and worker.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.process.pid, signum)
