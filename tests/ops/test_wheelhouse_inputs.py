"""The wheelhouse module's record of what its wheels were built from.

A playbook run builds the workers' wheels only when something they are built from has
changed (playbooks/roles/mcpi_wheelhouse/library/mcpi_wheelhouse.py): these tests hold
the digest of a source tree to every change a build could see, and to nothing else.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / "playbooks/roles/mcpi_wheelhouse/library/mcpi_wheelhouse.py"


@pytest.fixture(scope="module")
def wheelhouse() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mcpi_wheelhouse", MODULE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_command(argv: list[str], handle_exceptions: bool = True) -> tuple[int, str, str]:
    """What AnsibleModule.run_command returns, for a command run here."""
    done = subprocess.run(argv, capture_output=True, text=True)
    return done.returncode, done.stdout, done.stderr


def git(tree: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(tree), *args], check=True, capture_output=True)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path / "source"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg/__init__.py").write_text("VERSION = 1\n")
    (root / "setup.py").write_text("from setuptools import setup\nsetup()\n")
    (root / ".gitignore").write_text("build/\n*.so\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    return root


def test_the_digest_follows_every_file_a_build_reads(wheelhouse: Any, tree: Path) -> None:
    digest = wheelhouse.tree_digest
    first = digest(run_command, str(tree))
    assert first is not None and digest(run_command, str(tree)) == first
    # Ignored files (build output, compiled modules) are not what a build reads.
    (tree / "build").mkdir()
    (tree / "build/junk.txt").write_text("x")
    (tree / "pkg/_kernel.so").write_bytes(b"\0")
    assert digest(run_command, str(tree)) == first
    # A changed byte, a new untracked module, a mode and a deletion each change it.
    seen = {first}
    (tree / "pkg/__init__.py").write_text("VERSION = 2\n")
    seen.add(digest(run_command, str(tree)))
    (tree / "pkg/extra.py").write_text("")
    seen.add(digest(run_command, str(tree)))
    (tree / "pkg/extra.py").chmod(0o755)
    seen.add(digest(run_command, str(tree)))
    (tree / "setup.py").unlink()
    seen.add(digest(run_command, str(tree)))
    assert len(seen) == 5


def test_nothing_outside_a_git_work_tree_is_cached(wheelhouse: Any, tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    assert wheelhouse.tree_digest(run_command, str(tmp_path / "plain")) is None
    assert wheelhouse.tree_digests(run_command, [str(tmp_path / "plain")]) is None


def test_the_key_ignores_the_hubs_own_build_of_a_model_only(wheelhouse: Any, tree: Path) -> None:
    """The hub installs the model projects it deploys, so they show in its ``pip freeze``
    from the run after: those lines are not part of the key, every other pin is."""
    recipe = {"python": "py", "version": "1", "freeze": "numpy==2.0\n", "targets": [], "models": []}
    digests = wheelhouse.tree_digests(run_command, [str(tree)])
    key = wheelhouse.built_from(recipe, digests, ["my-model"])
    installed = {**recipe, "freeze": "numpy==2.0\nmy_model @ file:///tmp/w.whl\n"}
    assert wheelhouse.built_from(installed, digests, ["my-model"]) == key
    upgraded = {**recipe, "freeze": "numpy==2.1\n"}
    assert wheelhouse.built_from(upgraded, digests, ["my-model"]) != key
    assert wheelhouse.built_from({**recipe, "targets": ["3.11.2"]}, digests, []) != key


def test_a_project_in_a_directory_git_ignores_is_not_cached(wheelhouse: Any, tree: Path) -> None:
    """Git lists nothing there, whatever changes: its digest would never change (the
    deploy tier's model project sits in the ignored .testbed/)."""
    project = tree / "build" / "model"
    project.mkdir(parents=True)
    (project / "model.py").write_text('version = "1"\n')
    assert wheelhouse.tree_digest(run_command, str(project)) is None
    assert wheelhouse.tree_digests(run_command, [str(tree), str(project)]) is None


def test_a_build_reads_a_copy_of_the_listed_files_only(wheelhouse: Any, tree: Path) -> None:
    """Left-over build output (setuptools' build/ kept a deleted module in every later
    wheel) is not in what pip builds from; an untracked new module is."""
    (tree / "build/lib/pkg").mkdir(parents=True)
    (tree / "build/lib/pkg/deleted.py").write_text("")
    (tree / "pkg/new.py").write_text("")
    copy = Path(wheelhouse.build_copy(run_command, str(tree), str(tree.parent / "copy")))
    files = sorted(str(p.relative_to(copy)) for p in copy.rglob("*") if p.is_file())
    assert files == [".gitignore", "pkg/__init__.py", "pkg/new.py", "setup.py"]


def test_a_tree_git_does_not_list_is_copied_without_earlier_builds(
    wheelhouse: Any, tmp_path: Path
) -> None:
    """The deploy tier's model project sits in the ignored .testbed/: a stale build/
    there (newer than the source file a test rewrote) once put the old code in the new
    wheel."""
    project = tmp_path / "model"
    (project / "build/lib").mkdir(parents=True)
    (project / "build/lib/model.py").write_text('version = "2"\n')
    (project / "model.egg-info").mkdir()
    (project / "model.py").write_text('version = "1"\n')
    (project / "pyproject.toml").write_text("[project]\nname = 'model'\n")
    copy = Path(wheelhouse.build_copy(run_command, str(project), str(tmp_path / "copy")))
    files = sorted(str(p.relative_to(copy)) for p in copy.rglob("*") if p.is_file())
    assert files == ["model.py", "pyproject.toml"]
