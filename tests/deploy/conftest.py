"""The deploy tier: the playbooks against real systemd hosts (see testbed.py).

It needs root and a few Debian packages (scripts/test installs them). Where it cannot
run it is skipped with the reason, except under CI (``CI`` set) or with
``MCPI_REQUIRE_DEPLOY=1``, where a missing prerequisite is a failure: CI must never
pass by skipping the deployment.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.deploy.testbed import RECORDED, STAGES, TestBed, missing_prerequisites


def _required() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("MCPI_REQUIRE_DEPLOY") == "1"


@pytest.fixture(scope="session")
def testbed() -> Iterator[TestBed]:
    problems = missing_prerequisites()
    if problems:
        message = "deploy test bed unavailable: " + "; ".join(problems)
        if _required():
            pytest.fail(message)
        pytest.skip(message)
    bed = TestBed()
    try:
        yield bed.up()
    finally:
        bed.down()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if STAGES:
        terminalreporter.section("deploy test bed: time per stage")
        for name, seconds in STAGES:
            terminalreporter.write_line(f"{seconds:7.1f} s  {name}")
    for line in RECORDED:
        terminalreporter.write_line(f"recorded: {line}")
