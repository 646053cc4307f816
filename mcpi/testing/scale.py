"""An emulated large cluster on one machine: many worker hosts whose slots sleep.

Each emulated host is one Celery worker node (``nap@emu-<i>``) with a thread pool of
``slots`` threads, and the job's model, ``nap``, sleeps instead of computing: so 1,600
slots behave like 1,600 cores on a 2-core machine, and what is measured is the control
plane -- the hub, the broker, Redis, their messages and connections -- not the CPU
(HTCondor's scale tests run "many startds per core … running sleep jobs"). Threads,
not prefork: 1,600 processes would not fit in memory; so Redis connections come per
host here, where deployed prefork workers hold one per slot.

The nap model is installed as a user's model project is (a module and its dist-info
with the ``mcpi.models`` entry point) in a directory that goes on the workers' and the
hub's ``PYTHONPATH``: no code travels through the broker, here as anywhere.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from mcpi.testing.servers import Sandbox, Worker

#: The model every emulated slot runs: ``ms`` milliseconds of sleep per sample, one
#: sleep per block of 1,000 samples (a second). Each block still costs its slot's
#: thread some 0.1 ms of CPU (its generator, its sums) that a deployed slot would spend
#: on its own core; here every slot shares two: at 1,600 slots, blocks of 100 samples
#: kept 1.8 of the 2 cores busy (measured), and starved the control plane the emulation
#: is there to measure. Blocks of a second cost about 0.2 of a core.
NAP_MODEL = '''"""Sleep instead of compute: ms milliseconds per sample, then a uniform."""

import time

import mcpi


@mcpi.model("nap", outputs=("x",), params={"ms": 1.0}, exact={"x": 0.5}, block=1000, version="1")
def nap(rng, n, ms):
    time.sleep(n * ms / 1000.0)
    return rng.random(n)
'''


def install_nap_model(target: Path) -> Path:
    """Install the nap model into ``target`` as pip would; put ``target`` on PYTHONPATH."""
    target.mkdir(parents=True, exist_ok=True)
    (target / "mcpi_nap.py").write_text(NAP_MODEL)
    info = target / "mcpi_nap-1.0.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mcpi-nap\nVersion: 1.0.0\n")
    (info / "entry_points.txt").write_text("[mcpi.models]\nnap = mcpi_nap:nap\n")
    return target


def established(port: int) -> int:
    """TCP connections established to ``port`` on this machine (its server's side)."""
    done = subprocess.run(
        ["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return len(done.stdout.splitlines())


class EmulatedCluster(Sandbox):
    """A private broker and backend (TLS, as deployed) and any number of emulated hosts.

    ``with EmulatedCluster(root) as cluster:`` starts the servers; :meth:`grow` starts
    hosts (all at once), :meth:`shrink` stops them; everything stops on exit.
    """

    def __init__(self, root: Path) -> None:
        super().__init__(root, workers=0)
        self.models = install_nap_model(root / "models")

    @property
    def slots(self) -> int:
        return sum(host.concurrency for host in self.workers)

    def grow(self, hosts: int, slots: int, timeout: float = 300) -> None:
        """Start ``hosts`` more emulated hosts of ``slots`` slots each, and wait for all."""
        first = len(self.workers)
        started = []
        for i in range(first, first + hosts):
            worker = Worker(
                "nap",
                self.rabbitmq.url,
                self.redis.url,
                self.root / "hosts" / f"emu-{i}.log",
                concurrency=slots,
                extra_env={**self.rabbitmq.client_env(), "PYTHONPATH": str(self.models)},
                pool="threads",
                host=f"emu-{i}",
                polite=True,
            )
            self.workers.append(worker)
            worker.launch()
            started.append(worker)
        for worker in started:
            worker.wait_ready(timeout)

    def shrink(self) -> None:
        """Stop every emulated host (SIGKILL: they hold no work between jobs)."""
        for worker in self.workers:
            worker.kill()
        self.workers = []

    def hub_env(self, cache: Path) -> dict[str, str]:
        """A hub's environment on this cluster (the nap model on its path, its own cache)."""
        return {
            **self.env(),
            "PYTHONPATH": str(self.models),
            "MCPI_CACHE_DIR": str(cache),
            "XDG_CONFIG_HOME": str(cache.parent / "no-config"),
        }

    def connections(self) -> tuple[int, int]:
        """(broker, Redis) connections established now."""
        return established(self.rabbitmq.port), established(self.redis.port)

    def close(self) -> None:
        self.shrink()
        super().close()
