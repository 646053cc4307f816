"""What the hub's tests share: a job run on the in-process executor (numpy only)."""

from __future__ import annotations

from mcpi.hub.progress import NoProgress
from mcpi.hub.report import JobReport
from mcpi.hub.request import JobRequest
from mcpi.hub.run import run_job
from mcpi.hub.warm import Warm
from mcpi.settings import Settings
from mcpi.testing.inprocess import InProcess


def run(request: JobRequest, settings: Settings, executor: InProcess | None = None) -> JobReport:
    """``request`` through the hub's one pipeline, on ``executor`` (default: one slot)."""
    return run_job(request, settings, NoProgress(), Warm(executor or InProcess()))
