"""Helpers shared by test modules (test modules never import each other)."""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mcpi.cli import main
from mcpi.core.chunk import ChunkResult, Telemetry
from mcpi.core.exact import OutputEstimate, output_estimate
from mcpi.core.job import Job
from mcpi.core.kernel import dart_sums
from mcpi.core.plan import Plan
from mcpi.models.builtin import pi


def cpu_flags() -> set[str]:
    """The CPU features the kernel reports on this machine (``/proc/cpuinfo``'s flags)."""
    with open("/proc/cpuinfo") as cpuinfo:
        return set(next((line for line in cpuinfo if line.startswith("flags")), "").split())


#: The instructions the compiled vector paths need: the dart kernel's IFMA path, and
#: the exact sums' window pass.
HAS_IFMA = {"avx512f", "avx512dq", "avx512ifma"} <= cpu_flags()
HAS_AVX512 = {"avx512f", "avx512dq"} <= cpu_flags()

#: A small π job of ten chunks, for tallies and messages.
PLAN = Plan(1000, 100)
PI = pi.call({})
JOB = Job("j", 5, PLAN, PI)


def pi_estimate(hits: int, darts: int) -> OutputEstimate:
    """π's estimate from ``hits`` of ``darts``, as the hub reports the pi model's output."""
    return output_estimate("pi", darts, *dart_sums(hits), exact=math.pi, binary=4.0)


def result(index: int, hits: int | None = None, host: str = "h1") -> ChunkResult:
    """A result of chunk ``index`` of :data:`PLAN` (50 hits unless given), counted on ``host``."""
    chunk = PLAN.chunk(index)
    sums = dart_sums(50 if hits is None else hits)
    return ChunkResult(chunk, sums, Telemetry(host, 1, 0.5, "0.1.0"))


def estimate(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any] | None, str]:
    """``mcpi-hub estimate --json ARGS``: exit status, the report if it succeeded, stderr."""
    return hub_json("estimate", env, *args)


def run_model(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any] | None, str]:
    """``mcpi-hub run --json ARGS``: exit status, the report if it succeeded, stderr."""
    return hub_json("run", env, *args)


def hub_json(
    command: str, env: dict[str, str], *args: str
) -> tuple[int, dict[str, Any] | None, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main([command, "--json", *args], {**env, "MCPI_DEBUG": "1"}, out, err)
    return status, (json.loads(out.getvalue()) if status == 0 else None), err.getvalue()


class Background:
    """``estimate`` (or ``command``) in a thread, so that the test can break things meanwhile."""

    def __init__(self, env: dict[str, str], *args: str, command: str = "estimate") -> None:
        self.result: tuple[int, dict[str, Any] | None, str] | None = None
        self.command = command
        self.thread = threading.Thread(target=self._run, args=(env, args), daemon=True)
        self.thread.start()

    def _run(self, env: dict[str, str], args: tuple[str, ...]) -> None:
        self.result = hub_json(self.command, env, *args)

    def join(self, timeout: float) -> tuple[int, dict[str, Any] | None, str]:
        self.thread.join(timeout)
        assert self.result is not None, f"the hub did not finish within {timeout}s"
        return self.result


#: A user's model project, outside the mcpi tree (its model: ``cosine``).
USER_MODELS = Path(__file__).parent / "data" / "usermodels"


def install_user_models(target: Path, version: str = "1") -> Path:
    """Install the user's model project into ``target`` as pip would (module and
    dist-info with its entry points), with the model declared at ``version``; the
    directory then goes on a process's PYTHONPATH."""
    target.mkdir(parents=True, exist_ok=True)
    source = (USER_MODELS / "usermodels.py").read_text()
    (target / "usermodels.py").write_text(source.replace('version="1"', f'version="{version}"'))
    info = target / "mcpi_usermodels-1.0.0.dist-info"
    shutil.rmtree(info, ignore_errors=True)
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mcpi-usermodels\nVersion: 1.0.0\n")
    (info / "entry_points.txt").write_text("[mcpi.models]\ncosine = usermodels:cosine\n")
    return target


def kill_once_journaled(args: list[str], env: Mapping[str, str], cache: Path) -> Path:
    """Run ``mcpi-hub ARGS`` on the local pool, SIGKILL it once it has journaled three
    chunks, and return its journal (the job's id is the journal's stem)."""
    from mcpi.testing.servers import wait_for

    killed = subprocess.Popen(
        [sys.executable, "-m", "mcpi", *args],
        env=dict(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    jobs = cache / "mcpi/jobs"
    wait_for(
        lambda: any(p.read_text().count("\n") >= 3 for p in jobs.glob("*.chunks")),
        120,
        "chunks to be journaled",
    )
    killed.send_signal(signal.SIGKILL)
    killed.wait(10)
    (journal,) = jobs.glob("*.chunks")
    return journal


def publish_task(
    broker: Any,
    task: str,
    args: list[Any],
    content_type: str = "application/json",
    body: bytes | None = None,
) -> str:
    """Publish a raw Celery protocol-2 message for ``task`` to the mcpi queue, as an
    attacker or a broken client could (pika, not Celery); its task id."""
    import pika

    task_id = str(uuid.uuid4())
    headers = {
        "lang": "py",
        "task": task,
        "id": task_id,
        "root_id": task_id,
        "parent_id": None,
        "group": None,
        "retries": 0,
        "eta": None,
        "expires": None,
        "timelimit": [None, None],
        "argsrepr": "",
        "kwargsrepr": "",
        "origin": "test",
        "ignore_result": False,
    }
    properties = pika.BasicProperties(
        content_type=content_type,
        content_encoding="utf-8" if "json" in content_type else "binary",
        headers=headers,
        correlation_id=task_id,
        delivery_mode=2,
    )
    connection = pika.BlockingConnection(broker.pika_parameters())
    try:
        payload = json.dumps([args, {}, {}]).encode() if body is None else body
        connection.channel().basic_publish("", "mcpi", payload, properties)
    finally:
        connection.close()
    return task_id


BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run_benchmark(script: str, *args: str, cache: Path | None = None, timeout: int = 300) -> str:
    """``python benchmarks/SCRIPT ARGS`` as a user runs it (its jobs recorded in
    ``cache``, not the user's); its output, once it has exited 0."""
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)} if cache is not None else None
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout
