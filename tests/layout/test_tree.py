"""The repository's top level: what the tree is, and nothing a test run left behind."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]

#: Every tracked entry at the top (a new one is added here on purpose).
TOP_LEVEL = {
    ".ansible-lint", ".ci", ".gitignore", "CHANGELOG.md", "README.md", "Vagrantfile",
    "ansible.cfg", "benchmarks", "conftest.py", "docs", "inventory", "mcpi", "playbooks",
    "pyproject.toml", "scripts", "setup.py", "tests",
}  # fmt: skip


def test_nothing_but_the_tree_is_tracked_at_the_top() -> None:
    # A test that once wrote rate books into directories named by Hypothesis, relative
    # to the working directory, got seven of them committed.
    if shutil.which("git") is None or not (REPOSITORY / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPOSITORY, capture_output=True, check=True, timeout=60
    ).stdout
    top = {p.split(b"/")[0].decode("utf-8", "surrogateescape") for p in listed.split(b"\0") if p}
    assert top == TOP_LEVEL
