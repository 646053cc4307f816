"""Sphinx configuration of mcpi's documentation: Markdown (MyST), built offline with
warnings as errors (``bash scripts/docs``; ``scripts/test`` runs it)."""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(DOCS.parent))

import mcpi  # noqa: E402

project = "mcpi"
author = "mcpi maintainers"
copyright = "2026, mcpi maintainers"
release = version = mcpi.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinxarg.ext",
    "argument_specs",
]
source_suffix = {".md": "markdown"}
myst_enable_extensions = ["colon_fence", "deflist"]
# Links to headings (page.md#a-heading) resolve across pages, and are checked.
myst_heading_anchors = 4
exclude_patterns = ["_build", "conftest.py"]

html_theme = "furo"
html_title = f"mcpi {release}"
html_static_path: list[str] = []

autodoc_member_order = "bysource"
autodoc_typehints = "description"
# No network: nothing is fetched (intersphinx would be, and fail offline).
suppress_warnings: list[str] = []
