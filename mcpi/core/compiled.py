"""Loading the core's optional compiled modules: the module, or None and why not.

``_darts.c`` (the dart kernel) and ``_exact.c`` (the exact sums' passes) are built into
the wheel where a C compiler is at hand; where they are not, or do not load, the core
runs its numpy reference instead, which gives the same results, slower, and says why.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def load(name: str, what: str) -> tuple[ModuleType | None, str]:
    """The compiled module ``mcpi.core.<name>``, or None and why ``what`` did not load.

    >>> load("_no_such_module", "the compiled nothing")[1].startswith("the compiled nothing")
    True
    """
    try:
        return importlib.import_module(f"mcpi.core.{name}"), ""
    except ImportError as error:  # not built here (no C compiler at install), or unloadable
        return None, f"{what} did not load ({error})"
