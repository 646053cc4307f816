"""The examples in the README and the documentation, as tests (Sybil).

* Every ```python block runs, in order, one namespace per page, on the local pool (the
  page's jobs see no cluster: a private config and cache directory); ``<!-- skip: next
  -->`` before a block skips it (a model of the reader's own module, say).
* Every command a page shows (a ``$ `` line in a ```console or ```text block) is checked
  without running it: ``mcpi-hub``'s options against its parser, the playbooks,
  scripts and modules named against the repository. A renamed option, playbook or
  script fails here, not for a reader.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sybil import Example, Sybil
from sybil.parsers.myst import CodeBlockParser, PythonCodeBlockParser, SkipParser

from mcpi.cli.main import reference_parser

REPOSITORY = Path(__file__).resolve().parent.parent
#: What separates the simple commands of one shell line.
_SEPARATORS = {"&&", "||", "|", ";"}


def simple_commands(line: str) -> Iterator[list[str]]:
    """The simple commands of a shell line (comments dropped, variable assignments too).

    >>> list(simple_commands("X=1 .venv/bin/mcpi-hub jobs && vagrant up  # later"))
    [['.venv/bin/mcpi-hub', 'jobs'], ['vagrant', 'up']]
    """
    words: list[str] = []
    for word in [*shlex.split(line, comments=True), ";"]:
        if word in _SEPARATORS:
            while words and "=" in words[0] and not words[0].startswith("-"):
                words.pop(0)
            if words:
                yield words
            words = []
        else:
            words.append(word)


def check_command(argv: list[str]) -> None:
    """Raise AssertionError (or mcpi's UsageError) if ``argv`` names what does not exist."""
    program = Path(argv[0]).name
    if program == "mcpi-hub":
        reference_parser().parse_args(argv[1:])  # an unknown option raises UsageError
    elif program == "ansible-playbook":
        for playbook in (a for a in argv[1:] if a.endswith(".yml")):
            assert (REPOSITORY / playbook).is_file(), f"no playbook {playbook}"
    elif program == "bash":
        assert (REPOSITORY / argv[1]).is_file(), f"no script {argv[1]}"
    elif program.startswith("python") and "-m" in argv:
        module = argv[argv.index("-m") + 1]
        assert importlib.util.find_spec(module) is not None, f"no module {module}"
    elif program == "python" and len(argv) > 1:
        assert (REPOSITORY / argv[1]).is_file(), f"no script {argv[1]}"


def check_commands(example: Example) -> None:
    for line in str(example.parsed).splitlines():
        if line.startswith("$ "):
            for argv in simple_commands(line[2:]):
                check_command(argv)


def _private_environment(namespace: dict[str, Any]) -> None:
    """A page's jobs run where no cluster is configured, keeping their records apart."""
    scratch = tempfile.mkdtemp(prefix="mcpi-docs-")
    namespace["_scratch"] = scratch
    namespace["_saved_environment"] = dict(os.environ)
    for name in [n for n in os.environ if n.startswith("MCPI_")]:
        del os.environ[name]
    os.environ["XDG_CONFIG_HOME"] = str(Path(scratch) / "config")
    os.environ["XDG_CACHE_HOME"] = str(Path(scratch) / "cache")


def _restore_environment(namespace: dict[str, Any]) -> None:
    os.environ.clear()
    os.environ.update(namespace["_saved_environment"])
    shutil.rmtree(namespace["_scratch"], ignore_errors=True)


def documents() -> Sybil:
    """The pages whose examples are tests (the repository's root ``conftest.py`` collects
    them)."""
    return Sybil(
        path=str(REPOSITORY),
        parsers=[
            SkipParser(),
            PythonCodeBlockParser(),
            CodeBlockParser(language="console", evaluator=check_commands),
            CodeBlockParser(language="text", evaluator=check_commands),
        ],
        patterns=PAGES,
        setup=_private_environment,
        teardown=_restore_environment,
    )


#: The pages, relative to the repository.
PAGES = ["README.md", "docs/*.md", "docs/*/*.md"]
