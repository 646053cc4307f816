"""The import contract is enforced, not described: a wrong import fails it, naming itself."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

pytestmark = pytest.mark.skipif(
    not LINT_IMPORTS.exists(), reason="import-linter is not installed (pip install 'mcpi[lint]')"
)


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the copy of mcpi in ``tree``, with the repository's contracts."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "mcpi", tmp_path / "mcpi", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    return tmp_path


def add_import(module: Path, line: str) -> None:
    module.write_text(module.read_text() + f"\n{line}  # noqa\n")


def test_the_tree_keeps_every_contract(tree: Path) -> None:
    done = lint(tree)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "message"),
    [
        (
            "cluster/executor.py",
            "from mcpi.hub.records import JobBook",
            "mcpi.cluster.executor -> mcpi.hub.records",
        ),
        ("core/stats.py", "import celery", "mcpi.core.stats -> celery"),
        ("core/tally.py", "from mcpi.settings import Settings", "mcpi.core.tally -> mcpi.settings"),
        ("hub/run.py", "from mcpi.cli import main", "mcpi.hub.run -> mcpi.cli"),
        ("ops/status.py", "import mcpi.hub.records", "mcpi.ops.status -> mcpi.hub.records"),
        ("errors.py", "import numpy", "mcpi.errors -> numpy"),
    ],
)
def test_a_wrong_import_breaks_the_contract_and_is_named(
    tree: Path, module: str, line: str, message: str
) -> None:
    add_import(tree / "mcpi" / module, line)
    done = lint(tree)
    assert done.returncode != 0
    assert message in done.stdout, done.stdout
