"""What a model's per-sample values can depend on besides its code: numpy and the CPU.

numpy promises the same random streams for the same bit generator and seed, but its
distribution methods may change between numpy versions, and its ``sin``, ``exp``,
``log`` ... take SIMD paths chosen for the CPU they run on, which can differ from
other paths in the last bits. So a model job's result is bit-identical between hosts
that agree on :func:`numeric_runtime`; where they do not, the hub says so in the report.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np


def cpu_features() -> list[str]:
    """The CPU features numpy's SIMD dispatch found on this machine (empty if unknown)."""
    for module in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):
        try:
            features: dict[str, bool] = importlib.import_module(module).__cpu_features__
        except (ImportError, AttributeError):
            continue
        return sorted(name for name, present in features.items() if present)
    return []


def numeric_runtime() -> dict[str, Any]:
    """numpy's version and the CPU features its dispatch uses here.

    >>> sorted(numeric_runtime())
    ['cpu', 'numpy']
    """
    return {"numpy": np.__version__, "cpu": cpu_features()}


def differences(hub: dict[str, Any], workers: dict[str, dict[str, Any]]) -> list[str]:
    """What in the workers' numeric runtimes differs from the hub's, one phrase each.

    >>> hub = {"numpy": "2.4.6", "cpu": ["AVX2"]}
    >>> differences(hub, {"w1": {"numpy": "2.4.6", "cpu": ["AVX2", "AVX512F"]}})
    ['w1 has CPU features AVX512F that this hub lacks']
    """
    found = []
    for node, theirs in sorted(workers.items()):
        if theirs.get("numpy") not in (None, hub["numpy"]):
            found.append(f"{node} runs numpy {theirs['numpy']} (this hub {hub['numpy']})")
        cpu = theirs.get("cpu")
        if isinstance(cpu, list) and cpu and hub["cpu"]:
            more, fewer = sorted(set(cpu) - set(hub["cpu"])), sorted(set(hub["cpu"]) - set(cpu))
            if more:
                found.append(f"{node} has CPU features {' '.join(more)} that this hub lacks")
            if fewer:
                found.append(f"{node} lacks CPU features {' '.join(fewer)} that this hub has")
    return found
