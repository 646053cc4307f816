"""Helpers shared by test modules (test modules never import each other)."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

from mcpi.cli import main
from mcpi.core.chunk import ChunkResult, Telemetry
from mcpi.core.job import Job
from mcpi.core.plan import Plan

#: A small job of ten chunks, for tallies and messages.
PLAN = Plan(1000, 100)
JOB = Job("j", 5, PLAN)


def result(index: int, hits: int | None = None, host: str = "h1") -> ChunkResult:
    """A result of chunk ``index`` of :data:`PLAN` (50 hits unless given), counted on ``host``."""
    chunk = PLAN.chunk(index)
    return ChunkResult(chunk, (50 if hits is None else hits,), Telemetry(host, 1, 0.5, "0.1.0"))


def estimate(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any] | None, str]:
    """``mcpi-hub estimate --json ARGS``: exit status, the report if it succeeded, stderr."""
    out, err = io.StringIO(), io.StringIO()
    status = main(["estimate", "--json", *args], {**env, "MCPI_DEBUG": "1"}, out, err)
    return status, (json.loads(out.getvalue()) if status == 0 else None), err.getvalue()


class Background:
    """``estimate`` in a thread, so that the test can break things while it runs."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.result: tuple[int, dict[str, Any] | None, str] | None = None
        self.thread = threading.Thread(target=self._run, args=(env, args), daemon=True)
        self.thread.start()

    def _run(self, env: dict[str, str], args: tuple[str, ...]) -> None:
        self.result = estimate(env, *args)

    def join(self, timeout: float) -> tuple[int, dict[str, Any] | None, str]:
        self.thread.join(timeout)
        assert self.result is not None, f"the hub did not finish within {timeout}s"
        return self.result
