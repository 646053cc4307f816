"""mcpi: embarrassingly parallel Monte Carlo (π by darts, or your own models) on an ad hoc
Celery cluster.

For scripts and notebooks: ``mcpi.run(model, samples=..., seed=...)`` runs a model
(:mod:`mcpi.api`), ``mcpi.sweep(model, [params, ...])`` runs it over many parameter
sets at once, ``with mcpi.Session() as s: s.run(...)`` runs many jobs, warm, and
``@mcpi.model(...)`` declares one (:mod:`mcpi.core.model`).

The folders are the layers, each importing only those below it (checked in CI by
``lint-imports``): :mod:`mcpi.core` (pure, numpy only: kernel, plan, tally, messages,
statistics, stopping rule, chunk sizing) under :mod:`mcpi.cluster` (the Celery adapter
and the cluster executor), under :mod:`mcpi.hub` (a job's stages, the local pool, job
records, the rate book) and :mod:`mcpi.ops` (status, inventory, Fabric operations),
under :mod:`mcpi.cli` (``mcpi-hub``) and :mod:`mcpi.api` (the Python API).
:mod:`mcpi.models` (the model registry and the built-in models, pure like the core)
sits between the core and the cluster. :mod:`mcpi.settings` and :mod:`mcpi.errors` serve
every layer; :mod:`mcpi.bench` (with its :mod:`mcpi.testing` servers) sits between the
CLI and the hub.
"""

from __future__ import annotations

__version__ = "0.4.0"

import importlib
from typing import Any

#: The facade's names, and the modules that define them.
_EXPORTS = {
    "run": "mcpi.api",
    "sweep": "mcpi.api",
    "Session": "mcpi.api",
    "sensitivity": "mcpi.api",
    "model": "mcpi.core.model",
    "Model": "mcpi.core.model",
    "normal_quantile": "mcpi.core.special",
}


def __getattr__(name: str) -> Any:
    # Imported on first use (PEP 562), by name: every layer imports this package for
    # ``__version__``, and must not thereby import the API and the hub below it.
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mcpi' has no attribute {name!r}")
