"""What the wheel must carry besides Python modules: the workers install it and nothing else."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


def test_every_data_file_of_the_core_is_declared_package_data() -> None:
    declared = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["mcpi.core"]
    shipped = sorted(
        str(p.relative_to(REPOSITORY / "mcpi" / "core"))
        for p in (REPOSITORY / "mcpi" / "core" / "data").iterdir()
    )
    assert shipped and sorted(declared) == shipped
