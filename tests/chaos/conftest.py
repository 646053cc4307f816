"""The chaos tier's summary at the end of the run (see summary.py)."""

from __future__ import annotations

import pytest

from tests.chaos.summary import SOAKED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SOAKED:
        terminalreporter.section("chaos soak: what each seed did")
        for line in SOAKED:
            terminalreporter.write_line(line)
