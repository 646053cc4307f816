"""Sphinx configuration of mcpi's documentation: Markdown (MyST), built offline with
warnings as errors (``bash scripts/docs``; ``scripts/test`` runs it)."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
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
    # MyST-NB: MyST Markdown (it loads myst_parser) and Jupyter notebooks as pages.
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinxarg.ext",
    "argument_specs",
]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}
# The example notebook is run at every build, in a Jupyter kernel of this Python, so that
# the page shows what it does today: its outputs are not kept in git. It runs in a
# temporary directory (it writes its model to a file there) and keeps its job records
# in a temporary cache, not the builder's.
nb_execution_mode = "force"
nb_execution_in_temp = True
nb_execution_timeout = 300
nb_execution_raise_on_error = True
os.environ["MCPI_CACHE_DIR"] = _cache = tempfile.mkdtemp(prefix="mcpi-docs-")
atexit.register(shutil.rmtree, _cache, ignore_errors=True)
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
